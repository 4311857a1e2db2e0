-- Row-level security of public.usage_monthly_reports: the policies below are all of its policies.
ALTER TABLE public.usage_monthly_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.usage_monthly_reports FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS usage_monthly_reports_select_admin ON public.usage_monthly_reports;
CREATE POLICY usage_monthly_reports_select_admin ON public.usage_monthly_reports FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));
