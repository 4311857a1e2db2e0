-- Row-level security of archive.audit_log_batches: the policies below are all of its policies.
ALTER TABLE archive.audit_log_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive.audit_log_batches FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS audit_log_batches_select_admin ON archive.audit_log_batches;
CREATE POLICY audit_log_batches_select_admin ON archive.audit_log_batches FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));
