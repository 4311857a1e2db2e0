-- change_user_tier(user, tier slug), second version (staff, billing/sql/0004): the same move,
-- through subscription_switch, so a plan that grows also resolves the alerts it outgrew.
CREATE OR REPLACE FUNCTION public.change_user_tier(p_user_id bigint, p_tier_slug text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_tier public.subscription_tiers%ROWTYPE;
    v_current public.user_subscriptions%ROWTYPE;
    v_cycle text;
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'only staff may change a tier' USING ERRCODE = '42501';
    END IF;
    SELECT * INTO v_tier FROM public.subscription_tiers t
     WHERE t.slug = p_tier_slug AND t.is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No active tier "%".', p_tier_slug USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_user_id) THEN
        RAISE EXCEPTION 'No such user.' USING ERRCODE = '22023';
    END IF;

    PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    SELECT * INTO v_current FROM public.user_subscriptions s
     WHERE s.user_id = p_user_id AND s.status IN ('trialing', 'active', 'past_due')
     FOR UPDATE;
    IF v_current.id IS NOT NULL AND v_current.tier_id = v_tier.id THEN
        RETURN v_current.id;
    END IF;
    v_cycle := coalesce(v_current.billing_cycle, 'monthly');
    RETURN public.subscription_switch(
        p_user_id, v_tier.id, v_cycle, now(),
        now() + CASE WHEN v_cycle = 'yearly' THEN interval '1 year' ELSE interval '1 month' END);
END
$$;
REVOKE ALL ON FUNCTION public.change_user_tier(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.change_user_tier(bigint, text) TO witchcraft_app;
