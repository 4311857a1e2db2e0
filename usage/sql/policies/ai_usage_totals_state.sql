-- Row-level security of public.ai_usage_totals_state: the policies below are all of its policies.
ALTER TABLE public.ai_usage_totals_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_totals_state FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_totals_state_select_admin ON public.ai_usage_totals_state;
CREATE POLICY ai_usage_totals_state_select_admin ON public.ai_usage_totals_state
    FOR SELECT TO witchcraft_app USING ((SELECT auth.is_admin()));
