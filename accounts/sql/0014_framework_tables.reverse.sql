GRANT SELECT, INSERT, UPDATE, DELETE ON public.django_session TO witchcraft_app;
DROP POLICY IF EXISTS users_groups_select_own ON public.users_groups;
DROP POLICY IF EXISTS users_user_permissions_select_own ON public.users_user_permissions;
ALTER TABLE public.users_groups NO FORCE ROW LEVEL SECURITY;
ALTER TABLE public.users_groups DISABLE ROW LEVEL SECURITY;
ALTER TABLE public.users_user_permissions NO FORCE ROW LEVEL SECURITY;
ALTER TABLE public.users_user_permissions DISABLE ROW LEVEL SECURITY;
