-- The every-minute WAL archiving run (backup_wal) prunes its own old rows: the app role may
-- delete, and the policy (witchcraft/sql/policies/maintenance_runs.sql) says which rows.
GRANT DELETE ON public.maintenance_runs TO witchcraft_app;
