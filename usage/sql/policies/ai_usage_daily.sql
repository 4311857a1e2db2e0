-- Row-level security of public.ai_usage_daily: the policies below are all of its policies.
ALTER TABLE public.ai_usage_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_daily FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_daily_select_admin ON public.ai_usage_daily;
CREATE POLICY ai_usage_daily_select_admin ON public.ai_usage_daily
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS ai_usage_daily_select_own ON public.ai_usage_daily;
CREATE POLICY ai_usage_daily_select_own ON public.ai_usage_daily
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
