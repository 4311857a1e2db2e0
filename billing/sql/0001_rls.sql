-- Row-level security for billing. Tiers: public ones readable by anyone, plus the tier a user
-- is on; writable by admins. Subscriptions, quotas, payments: readable by their owner and
-- admins, written only by SQL functions. Alerts: the owner (or an admin) acknowledges them.

ALTER TABLE subscription_tiers ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscription_tiers FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON subscription_tiers TO witchcraft_app;
GRANT USAGE ON SEQUENCE subscription_tiers_id_seq TO witchcraft_app;
CREATE POLICY subscription_tiers_select_public ON subscription_tiers FOR SELECT TO witchcraft_app
    USING ((is_public AND is_active) OR (SELECT auth.is_admin()));
CREATE POLICY subscription_tiers_select_own ON subscription_tiers FOR SELECT TO witchcraft_app
    USING (id IN (SELECT s.tier_id FROM user_subscriptions s
                   WHERE s.user_id = (SELECT auth.user_id())));
CREATE POLICY subscription_tiers_insert_admin ON subscription_tiers FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()));
CREATE POLICY subscription_tiers_update_admin ON subscription_tiers FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
CREATE POLICY subscription_tiers_delete_admin ON subscription_tiers FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['user_subscriptions', 'user_quotas', 'payment_history',
                             'usage_alerts']
    LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('GRANT SELECT ON public.%I TO witchcraft_app', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO witchcraft_app'
                       ' USING (user_id = (SELECT auth.user_id()))', t || '_select_own', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO witchcraft_app'
                       ' USING ((SELECT auth.is_admin()))', t || '_select_admin', t);
    END LOOP;
END
$$;

GRANT UPDATE (acknowledged_at, acknowledged_by_id) ON usage_alerts TO witchcraft_app;
CREATE POLICY usage_alerts_update_own ON usage_alerts FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
CREATE POLICY usage_alerts_update_admin ON usage_alerts FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
