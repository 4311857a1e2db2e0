-- Row-level security for agents: users own their sessions and everything in them.

-- agent_sessions: counters and totals are kept by triggers, so only the descriptive columns
-- are writable by the app role.
ALTER TABLE agent_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_sessions FORCE ROW LEVEL SECURITY;
GRANT SELECT ON agent_sessions TO witchcraft_app;
GRANT INSERT (user_id, title, agent_name, model_id, metadata) ON agent_sessions TO witchcraft_app;
GRANT UPDATE (title, agent_name, model_id, is_active, ended_at, metadata)
    ON agent_sessions TO witchcraft_app;
GRANT USAGE ON SEQUENCE agent_sessions_id_seq TO witchcraft_app;
CREATE POLICY agent_sessions_select_own ON agent_sessions FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE POLICY agent_sessions_select_admin ON agent_sessions FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
CREATE POLICY agent_sessions_insert_own ON agent_sessions FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()));
CREATE POLICY agent_sessions_update_own ON agent_sessions FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
CREATE POLICY agent_sessions_update_admin ON agent_sessions FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

-- agent_messages: append-only conversation; a message goes into one of the user's own sessions.
ALTER TABLE agent_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_messages FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON agent_messages TO witchcraft_app;
GRANT USAGE ON SEQUENCE agent_messages_id_seq TO witchcraft_app;
CREATE POLICY agent_messages_select_own ON agent_messages FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE POLICY agent_messages_select_admin ON agent_messages FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
CREATE POLICY agent_messages_insert_own ON agent_messages FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()) AND EXISTS (
        SELECT 1 FROM agent_sessions s
         WHERE s.id = session_id AND s.user_id = (SELECT auth.user_id())));

-- agent_tool_calls: created in the user's own session, then completed (result, status).
ALTER TABLE agent_tool_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_tool_calls FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON agent_tool_calls TO witchcraft_app;
GRANT UPDATE (result, status, error, completed_at, duration_ms) ON agent_tool_calls
    TO witchcraft_app;
GRANT USAGE ON SEQUENCE agent_tool_calls_id_seq TO witchcraft_app;
CREATE POLICY agent_tool_calls_select_own ON agent_tool_calls FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE POLICY agent_tool_calls_select_admin ON agent_tool_calls FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
CREATE POLICY agent_tool_calls_insert_own ON agent_tool_calls FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()) AND EXISTS (
        SELECT 1 FROM agent_sessions s
         WHERE s.id = session_id AND s.user_id = (SELECT auth.user_id())));
CREATE POLICY agent_tool_calls_update_own ON agent_tool_calls FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));

-- agent_feedback: the user's own ratings, changeable and removable.
ALTER TABLE agent_feedback ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_feedback FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, DELETE ON agent_feedback TO witchcraft_app;
GRANT UPDATE (rating, comment, category) ON agent_feedback TO witchcraft_app;
GRANT USAGE ON SEQUENCE agent_feedback_id_seq TO witchcraft_app;
CREATE POLICY agent_feedback_select_own ON agent_feedback FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE POLICY agent_feedback_select_admin ON agent_feedback FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
CREATE POLICY agent_feedback_insert_own ON agent_feedback FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()) AND EXISTS (
        SELECT 1 FROM agent_sessions s
         WHERE s.id = session_id AND s.user_id = (SELECT auth.user_id())));
CREATE POLICY agent_feedback_update_own ON agent_feedback FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
CREATE POLICY agent_feedback_delete_own ON agent_feedback FOR DELETE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE INDEX IF NOT EXISTS agent_feedback_user_id ON agent_feedback (user_id);

-- agent_session_stats (materialized view): RLS does not apply to it, so the app role gets no
-- grant and reads it through this function: the caller's sessions, or all for an admin.
REVOKE ALL ON agent_session_stats FROM PUBLIC;
CREATE OR REPLACE FUNCTION public.get_agent_session_stats(p_session_ids bigint[] DEFAULT NULL)
RETURNS SETOF public.agent_session_stats
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT st.* FROM public.agent_session_stats st
     WHERE (auth.is_admin() OR (auth.user_id() IS NOT NULL AND st.user_id = auth.user_id()))
       AND (p_session_ids IS NULL OR st.session_id = ANY (p_session_ids))
$$;
REVOKE ALL ON FUNCTION public.get_agent_session_stats(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_agent_session_stats(bigint[]) TO witchcraft_app;
