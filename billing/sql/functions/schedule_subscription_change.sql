-- schedule_subscription_change(user, tier slug): a downgrade to a cheaper public tier, or a
-- cancellation (tier 'free'), taking effect when the current period ends: the subscription is
-- marked cancel_at_period_end with the tier that follows (NULL for free) and canceled_at the
-- moment it was asked; the quota keeps the current plan's limits until monthly_maintenance
-- moves the user. Asking again replaces the earlier choice. Audited
-- (subscription_change_scheduled). Returns the subscription's id.
-- 22023: unknown, inactive or private tier; the current tier; a dearer tier (an upgrade is paid
-- through the provider's checkout); no current subscription. 42501: may not act for the user.
CREATE OR REPLACE FUNCTION public.schedule_subscription_change(p_user_id bigint, p_tier_slug text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_target public.subscription_tiers%ROWTYPE;
    v_current public.user_subscriptions%ROWTYPE;
    v_current_tier public.subscription_tiers%ROWTYPE;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    SELECT * INTO v_target FROM public.subscription_tiers t
     WHERE t.slug = p_tier_slug AND t.is_active AND (t.is_public OR t.slug = 'free');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'There is no plan "%" to move to.', p_tier_slug USING ERRCODE = '22023';
    END IF;

    PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    SELECT * INTO v_current FROM public.user_subscriptions s
     WHERE s.user_id = p_user_id AND s.status IN ('trialing', 'active', 'past_due')
     FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'You have no current plan to change.' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_current_tier FROM public.subscription_tiers t WHERE t.id = v_current.tier_id;
    IF v_target.id = v_current.tier_id THEN
        RAISE EXCEPTION 'You are already on the % plan.', v_target.name USING ERRCODE = '22023';
    END IF;
    IF v_target.monthly_price > v_current_tier.monthly_price THEN
        RAISE EXCEPTION 'Moving to % is an upgrade: it is paid through checkout.', v_target.name
            USING ERRCODE = '22023';
    END IF;

    UPDATE public.user_subscriptions AS s
       SET cancel_at_period_end = true,
           scheduled_tier_id = CASE WHEN v_target.slug = 'free' THEN NULL ELSE v_target.id END,
           canceled_at = now(),
           updated_at = now()
     WHERE s.id = v_current.id;

    PERFORM public.write_audit_log(
        p_event_type => 'subscription_change_scheduled',
        p_user_id => p_user_id,
        p_details => jsonb_build_object(
            'from', v_current_tier.slug, 'to', v_target.slug,
            'effective_at', v_current.current_period_end),
        p_target_type => 'user_subscription',
        p_target_id => v_current.id::text);
    RETURN v_current.id;
END
$$;
REVOKE ALL ON FUNCTION public.schedule_subscription_change(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.schedule_subscription_change(bigint, text) TO witchcraft_app;
