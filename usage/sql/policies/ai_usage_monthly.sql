-- Row-level security of public.ai_usage_monthly: the policies below are all of its policies.
ALTER TABLE public.ai_usage_monthly ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_monthly FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_monthly_select_admin ON public.ai_usage_monthly;
CREATE POLICY ai_usage_monthly_select_admin ON public.ai_usage_monthly
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS ai_usage_monthly_select_own ON public.ai_usage_monthly;
CREATE POLICY ai_usage_monthly_select_own ON public.ai_usage_monthly
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
