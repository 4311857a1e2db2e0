-- Row-level security of public.users_groups: the policies below are all of its policies.
ALTER TABLE public.users_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.users_groups FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS users_groups_select_own ON public.users_groups;
CREATE POLICY users_groups_select_own ON public.users_groups
    FOR SELECT TO witchcraft_app
    USING (((user_id = auth.user_id()) OR auth.is_admin()));
