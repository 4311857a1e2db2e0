-- audit_logs.request_id holds only plausible ids: letters, digits and -_. , at most 64, or ''
-- (a row written outside any request or job). The site checks a client's X-Request-ID before
-- using it (witchcraft.clients.request_id); this is the backstop for every writer
-- (write_audit_log(), the registration and token functions, anything added later), so no
-- terminal escape, line break or space ever reaches the trail through app.request_id.
--
-- Audit rows are never rewritten: the constraint is added NOT VALID (new rows are checked from
-- now on) and validated only when every row already there passes, as in a new database. A
-- trail that already holds an implausible id a client sent before keeps it, and the
-- constraint stays NOT VALID there (\d audit_logs shows it).
ALTER TABLE public.audit_logs
    ADD CONSTRAINT audit_logs_request_id_plausible
    CHECK (request_id ~ '^[A-Za-z0-9._-]{0,64}$') NOT VALID;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.audit_logs
                    WHERE request_id !~ '^[A-Za-z0-9._-]{0,64}$') THEN
        ALTER TABLE public.audit_logs VALIDATE CONSTRAINT audit_logs_request_id_plausible;
    END IF;
END
$$;
