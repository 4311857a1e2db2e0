-- Row-level security of public.user_sessions: the policies below are all of its policies.
ALTER TABLE public.user_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.user_sessions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS user_sessions_delete_admin ON public.user_sessions;
CREATE POLICY user_sessions_delete_admin ON public.user_sessions FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_sessions_delete_own ON public.user_sessions;
CREATE POLICY user_sessions_delete_own ON public.user_sessions FOR DELETE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS user_sessions_insert_own ON public.user_sessions;
CREATE POLICY user_sessions_insert_own ON public.user_sessions FOR INSERT TO witchcraft_app
    WITH CHECK (user_id IS NULL OR user_id = (SELECT auth.user_id()) OR (SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_sessions_select_admin ON public.user_sessions;
CREATE POLICY user_sessions_select_admin ON public.user_sessions FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_sessions_select_own ON public.user_sessions;
CREATE POLICY user_sessions_select_own ON public.user_sessions FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS user_sessions_update_admin ON public.user_sessions;
CREATE POLICY user_sessions_update_admin ON public.user_sessions FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_sessions_update_own ON public.user_sessions;
CREATE POLICY user_sessions_update_own ON public.user_sessions FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
