-- Row-level security of public.user_quotas: the policies below are all of its policies.
ALTER TABLE public.user_quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.user_quotas FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS user_quotas_select_admin ON public.user_quotas;
CREATE POLICY user_quotas_select_admin ON public.user_quotas
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS user_quotas_select_own ON public.user_quotas;
CREATE POLICY user_quotas_select_own ON public.user_quotas
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
