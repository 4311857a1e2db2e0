-- Row-level security of archive.ai_usage_requests: the policies below are all of its policies.
ALTER TABLE archive.ai_usage_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive.ai_usage_requests FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_requests_archive_select_admin ON archive.ai_usage_requests;
CREATE POLICY ai_usage_requests_archive_select_admin ON archive.ai_usage_requests FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_usage_requests_archive_select_own ON archive.ai_usage_requests;
CREATE POLICY ai_usage_requests_archive_select_own ON archive.ai_usage_requests FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
