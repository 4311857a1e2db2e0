-- Staff actions of the admin (/admin/): reset a user's quota and move a user to another tier.
--
-- The runtime role cannot UPDATE user_quotas or user_subscriptions, so these are SECURITY
-- DEFINER functions. Unlike the quota functions, acting for a user is not enough: only an admin
-- (staff) or the service context may call them (42501 otherwise). search_path is pinned with
-- pg_temp last and every name is qualified. Lock order as everywhere: the user_quotas row first.

-- reset_user_quota(user): the used counters of the current period back to 0, the limits from
-- the user's current plan, and the open alerts of the user resolved. Returns false when the
-- user has no quota.
CREATE OR REPLACE FUNCTION public.reset_user_quota(p_user_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'only staff may reset a quota' USING ERRCODE = '42501';
    END IF;
    UPDATE public.user_quotas AS q
       SET tokens_used = 0,
           cost_used = 0,
           tokens_limit = coalesce((SELECT l.tokens_limit
                                      FROM public.quota_tier_limits(p_user_id) l), q.tokens_limit),
           cost_limit = coalesce((SELECT l.cost_limit
                                    FROM public.quota_tier_limits(p_user_id) l), q.cost_limit),
           updated_at = now()
     WHERE q.user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE public.usage_alerts AS a
       SET resolved_at = now()
     WHERE a.user_id = p_user_id AND a.resolved_at IS NULL;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.reset_user_quota(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.reset_user_quota(bigint) TO witchcraft_app;

-- change_user_tier(user, tier slug): end the user's current subscription (canceled now) and
-- start a new active one on the tier (same billing cycle, a period from now), and set the
-- quota's limits to the tier's. Returns the id of the user's current subscription afterwards;
-- when the user is already on the tier nothing changes. 22023 for an unknown or inactive tier.
CREATE OR REPLACE FUNCTION public.change_user_tier(p_user_id bigint, p_tier_slug text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_tier public.subscription_tiers%ROWTYPE;
    v_current public.user_subscriptions%ROWTYPE;
    v_cycle text;
    v_id bigint;
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
    IF v_current.id IS NOT NULL THEN
        UPDATE public.user_subscriptions AS s
           SET status = 'canceled', canceled_at = now(), cancel_at_period_end = false,
               current_period_end = greatest(s.current_period_start + interval '1 second', now()),
               updated_at = now()
         WHERE s.id = v_current.id;
    END IF;

    INSERT INTO public.user_subscriptions
           (user_id, tier_id, status, billing_cycle, current_period_start, current_period_end,
            cancel_at_period_end, payment_provider, provider_customer_id,
            provider_subscription_id, created_at, updated_at)
    VALUES (p_user_id, v_tier.id, 'active', v_cycle, now(),
            now() + CASE WHEN v_cycle = 'yearly' THEN interval '1 year' ELSE interval '1 month' END,
            false, '', '', '', now(), now())
    RETURNING id INTO v_id;

    UPDATE public.user_quotas AS q
       SET tokens_limit = v_tier.monthly_token_limit,
           cost_limit = v_tier.monthly_cost_limit,
           updated_at = now()
     WHERE q.user_id = p_user_id;
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION public.change_user_tier(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.change_user_tier(bigint, text) TO witchcraft_app;
