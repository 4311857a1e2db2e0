-- Row-level security of public.maintenance_runs: the policies below are all of its policies.
ALTER TABLE public.maintenance_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.maintenance_runs FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS maintenance_runs_insert_service ON public.maintenance_runs;
CREATE POLICY maintenance_runs_insert_service ON public.maintenance_runs FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));

DROP POLICY IF EXISTS maintenance_runs_select_admin ON public.maintenance_runs;
CREATE POLICY maintenance_runs_select_admin ON public.maintenance_runs FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS maintenance_runs_update_service ON public.maintenance_runs;
CREATE POLICY maintenance_runs_update_service ON public.maintenance_runs FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));

-- The service deletes only what the every-minute WAL archiving run leaves: its runs older than
-- a day (the latest one holds the figures; failures are in audit_logs too). Nothing else.
DROP POLICY IF EXISTS maintenance_runs_delete_service ON public.maintenance_runs;
CREATE POLICY maintenance_runs_delete_service ON public.maintenance_runs FOR DELETE
    TO witchcraft_app USING ((SELECT auth.is_service()) AND job = 'backup_wal'
        AND started_at < now() - interval '1 day');
