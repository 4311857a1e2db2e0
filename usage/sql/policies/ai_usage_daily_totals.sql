-- Row-level security of public.ai_usage_daily_totals: the policies below are all of its policies.
ALTER TABLE public.ai_usage_daily_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_daily_totals FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_daily_totals_select_admin ON public.ai_usage_daily_totals;
CREATE POLICY ai_usage_daily_totals_select_admin ON public.ai_usage_daily_totals
    FOR SELECT TO witchcraft_app USING ((SELECT auth.is_admin()));
