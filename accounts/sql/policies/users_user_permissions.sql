-- Row-level security of public.users_user_permissions: the policies below are all of its policies.
ALTER TABLE public.users_user_permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.users_user_permissions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS users_user_permissions_select_own ON public.users_user_permissions;
CREATE POLICY users_user_permissions_select_own ON public.users_user_permissions
    FOR SELECT TO witchcraft_app
    USING (((user_id = auth.user_id()) OR auth.is_admin()));
