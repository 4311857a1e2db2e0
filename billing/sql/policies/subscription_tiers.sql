-- Row-level security of public.subscription_tiers: the policies below are all of its policies.
ALTER TABLE public.subscription_tiers ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.subscription_tiers FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS subscription_tiers_delete_admin ON public.subscription_tiers;
CREATE POLICY subscription_tiers_delete_admin ON public.subscription_tiers FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS subscription_tiers_insert_admin ON public.subscription_tiers;
CREATE POLICY subscription_tiers_insert_admin ON public.subscription_tiers FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS subscription_tiers_select_own ON public.subscription_tiers;
CREATE POLICY subscription_tiers_select_own ON public.subscription_tiers FOR SELECT TO witchcraft_app
    USING (id IN (SELECT s.tier_id FROM user_subscriptions s
                   WHERE s.user_id = (SELECT auth.user_id())));

DROP POLICY IF EXISTS subscription_tiers_select_public ON public.subscription_tiers;
CREATE POLICY subscription_tiers_select_public ON public.subscription_tiers FOR SELECT TO witchcraft_app
    USING ((is_public AND is_active) OR (SELECT auth.is_admin()));

DROP POLICY IF EXISTS subscription_tiers_update_admin ON public.subscription_tiers;
CREATE POLICY subscription_tiers_update_admin ON public.subscription_tiers FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
