-- monitoring_job_queue(): the workers' last heartbeat and the queue's state, for staff (and the
-- service context). procrastinate's tables hold every job's arguments (user ids, addresses):
-- the runtime role has no grant on them, so the page reads these counts through here.
CREATE OR REPLACE FUNCTION public.monitoring_job_queue()
RETURNS TABLE(out_workers bigint, out_last_heartbeat timestamptz, out_now timestamptz,
              out_waiting bigint, out_due bigint, out_running bigint, out_failed bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT (SELECT count(*) FROM public.procrastinate_workers),
           (SELECT max(w.last_heartbeat) FROM public.procrastinate_workers w),
           now(),
           count(*) FILTER (WHERE j.status = 'todo'),
           count(*) FILTER (WHERE j.status = 'todo'
                              AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())),
           count(*) FILTER (WHERE j.status = 'doing'),
           count(*) FILTER (WHERE j.status = 'failed')
      FROM public.procrastinate_jobs j;
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_job_queue() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_job_queue() TO witchcraft_app;
