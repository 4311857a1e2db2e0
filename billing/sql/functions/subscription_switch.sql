-- subscription_switch(...): end the user's current subscription now and start a new active one
-- on p_tier_id for [p_period_start, p_period_end), with the provider's references; the quota's
-- limits become the tier's at once (what was used stays used) and alerts the new limits no
-- longer justify are resolved. Returns the new subscription's id. Internal: the caller checked
-- who may do this and holds the user's quota row lock.
CREATE OR REPLACE FUNCTION public.subscription_switch(
    p_user_id bigint,
    p_tier_id integer,
    p_billing_cycle text,
    p_period_start timestamptz,
    p_period_end timestamptz,
    p_payment_provider text DEFAULT '',
    p_provider_customer_id text DEFAULT '',
    p_provider_subscription_id text DEFAULT '',
    p_provider_event_at timestamptz DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    UPDATE public.user_subscriptions AS s
       SET status = 'canceled',
           canceled_at = now(),
           cancel_at_period_end = false,
           scheduled_tier_id = NULL,
           current_period_end = greatest(s.current_period_start + interval '1 second',
                                         least(s.current_period_end, now())),
           updated_at = now()
     WHERE s.user_id = p_user_id AND s.status IN ('trialing', 'active', 'past_due');

    INSERT INTO public.user_subscriptions
           (user_id, tier_id, status, billing_cycle, current_period_start, current_period_end,
            cancel_at_period_end, payment_provider, provider_customer_id,
            provider_subscription_id, provider_event_at, created_at, updated_at)
    VALUES (p_user_id, p_tier_id, 'active', p_billing_cycle, p_period_start, p_period_end,
            false, p_payment_provider, p_provider_customer_id, p_provider_subscription_id,
            p_provider_event_at, now(), now())
    RETURNING id INTO v_id;

    UPDATE public.user_quotas AS q
       SET tokens_limit = t.monthly_token_limit,
           cost_limit = t.monthly_cost_limit,
           updated_at = now()
      FROM public.subscription_tiers t
     WHERE t.id = p_tier_id AND q.user_id = p_user_id;
    PERFORM public.resolve_outgrown_alerts(p_user_id);
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION public.subscription_switch(
    bigint, integer, text, timestamp with time zone, timestamp with time zone, text, text, text,
    timestamp with time zone) FROM PUBLIC;
