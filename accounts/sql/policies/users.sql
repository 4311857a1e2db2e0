-- Row-level security of public.users: the policies below are all of its policies.
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.users FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS users_select_actor ON public.users;
CREATE POLICY users_select_actor ON public.users FOR SELECT TO witchcraft_app
    USING (id = (SELECT auth.actor_id()));

DROP POLICY IF EXISTS users_select_admin ON public.users;
CREATE POLICY users_select_admin ON public.users FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS users_select_own ON public.users;
CREATE POLICY users_select_own ON public.users FOR SELECT TO witchcraft_app
    USING (id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS users_update_admin ON public.users;
CREATE POLICY users_update_admin ON public.users FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS users_update_own ON public.users;
CREATE POLICY users_update_own ON public.users FOR UPDATE TO witchcraft_app
    USING (id = (SELECT auth.user_id())) WITH CHECK (id = (SELECT auth.user_id()));
