-- Row-level security of public.usage_alerts: the policies below are all of its policies.
ALTER TABLE public.usage_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.usage_alerts FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS usage_alerts_select_admin ON public.usage_alerts;
CREATE POLICY usage_alerts_select_admin ON public.usage_alerts
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS usage_alerts_select_own ON public.usage_alerts;
CREATE POLICY usage_alerts_select_own ON public.usage_alerts
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));

DROP POLICY IF EXISTS usage_alerts_update_admin ON public.usage_alerts;
CREATE POLICY usage_alerts_update_admin ON public.usage_alerts FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS usage_alerts_update_own ON public.usage_alerts;
-- A user acknowledges their own alerts, as themselves.
CREATE POLICY usage_alerts_update_own ON public.usage_alerts FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()))
    WITH CHECK (user_id = (SELECT auth.user_id())
                AND (acknowledged_by_id IS NULL
                     OR acknowledged_by_id = (SELECT auth.user_id())));
