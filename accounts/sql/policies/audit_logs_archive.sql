-- Row-level security of public.audit_logs_archive: the policies below are all of its policies.
ALTER TABLE public.audit_logs_archive ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_logs_archive FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS audit_logs_archive_select_admin ON public.audit_logs_archive;
CREATE POLICY audit_logs_archive_select_admin ON public.audit_logs_archive FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

-- The uncompressed archive is read like audit_logs too: the owner's own events (their export).
DROP POLICY IF EXISTS audit_logs_archive_select_own ON public.audit_logs_archive;
CREATE POLICY audit_logs_archive_select_own ON public.audit_logs_archive FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
