-- Row-level security of public.agent_sessions: the policies below are all of its policies.
ALTER TABLE public.agent_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.agent_sessions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS agent_sessions_insert_own ON public.agent_sessions;
CREATE POLICY agent_sessions_insert_own ON public.agent_sessions FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_sessions_select_admin ON public.agent_sessions;
CREATE POLICY agent_sessions_select_admin ON public.agent_sessions FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_sessions_select_own ON public.agent_sessions;
CREATE POLICY agent_sessions_select_own ON public.agent_sessions FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_sessions_update_admin ON public.agent_sessions;
CREATE POLICY agent_sessions_update_admin ON public.agent_sessions FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_sessions_update_own ON public.agent_sessions;
CREATE POLICY agent_sessions_update_own ON public.agent_sessions FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
