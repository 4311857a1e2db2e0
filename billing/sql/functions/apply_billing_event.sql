-- apply_billing_event(provider, event id, type, created, object): apply one verified event of
-- the payment provider (Stripe's shapes; amounts in minor units, times in Unix seconds), once.
-- Returns (outcome, user_id, subscription_id); outcome is
--   'applied'    the event moved the subscription and / or wrote payment_history; its id is kept
--                in billing_webhook_events, so a replay is a 'duplicate'
--   'duplicate'  this event id was applied before: nothing written
--   'ignored: <why>'  an event type not handled, or one that names no user, tier or
--                subscription of ours in a usable way: nothing written
-- and raises P0002 when the event names a subscription not known yet (its checkout event has
-- not arrived: events are not ordered), so that the provider retries later; nothing written.
-- An event older than the last one applied to a subscription (provider_event_at) still records
-- its payment but does not move the subscription's status back. Service context only (42501).
--
--   checkout.session.completed   client_reference_id = our user id, metadata.tier = the tier's
--       slug, subscription / customer = the provider's references, amount_total, currency,
--       invoice: the user moves to the tier now (an upgrade: limits raised at once), the first
--       payment is recorded (keyed by the invoice id, so invoice.paid for it adds nothing)
--   invoice.paid / invoice.payment_succeeded   payment succeeded; the subscription is active
--       and its period moves to the invoice line's period
--   invoice.payment_failed   payment failed (one row per attempt); active -> past_due
--   customer.subscription.deleted   the subscription ends now; the user is on free now
CREATE OR REPLACE FUNCTION public.apply_billing_event(
    p_provider text,
    p_event_id text,
    p_event_type text,
    p_event_created timestamptz,
    p_object jsonb
) RETURNS TABLE(outcome text, user_id bigint, subscription_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_user bigint;
    v_tier public.subscription_tiers%ROWTYPE;
    v_free public.subscription_tiers%ROWTYPE;
    v_sub public.user_subscriptions%ROWTYPE;
    v_ref text := coalesce(p_object->>'subscription', '');
    v_payment_id text;
    v_amount numeric;
    v_currency text := upper(coalesce(p_object->>'currency', 'usd'));
    v_start timestamptz;
    v_end timestamptz;
    v_new bigint;
    v_newer boolean;
    v_event_row bigint;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'only the service context applies billing events' USING ERRCODE = '42501';
    END IF;
    IF coalesce(p_provider, '') = '' OR coalesce(p_event_id, '') = '' THEN
        RAISE EXCEPTION 'an event needs a provider and an id' USING ERRCODE = '22023';
    END IF;
    IF v_currency !~ '^[A-Z]{3}$' THEN
        RETURN QUERY SELECT 'ignored: not a currency code'::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    IF p_event_type = 'checkout.session.completed' THEN
        IF coalesce(p_object->>'client_reference_id', '') !~ '^[0-9]{1,18}$' THEN
            RETURN QUERY SELECT 'ignored: no user reference'::text, NULL::bigint, NULL::bigint;
            RETURN;
        END IF;
        v_user := (p_object->>'client_reference_id')::bigint;
        IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = v_user AND u.deleted_at IS NULL)
        THEN
            RETURN QUERY SELECT 'ignored: unknown user'::text, NULL::bigint, NULL::bigint;
            RETURN;
        END IF;
        SELECT * INTO v_tier FROM public.subscription_tiers t
         WHERE t.slug = p_object->'metadata'->>'tier' AND t.is_active;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'ignored: unknown tier'::text, v_user, NULL::bigint;
            RETURN;
        END IF;
        IF v_ref = '' THEN
            RETURN QUERY SELECT 'ignored: not a subscription checkout'::text, v_user,
                                NULL::bigint;
            RETURN;
        END IF;
        IF coalesce(p_object->>'payment_status', 'paid') NOT IN ('paid', 'no_payment_required')
        THEN
            RETURN QUERY SELECT 'ignored: not paid'::text, v_user, NULL::bigint;
            RETURN;
        END IF;
    ELSIF p_event_type IN ('invoice.paid', 'invoice.payment_succeeded', 'invoice.payment_failed',
                           'customer.subscription.deleted') THEN
        IF p_event_type = 'customer.subscription.deleted' THEN
            v_ref := coalesce(p_object->>'id', '');
        END IF;
        IF v_ref = '' THEN
            RETURN QUERY SELECT 'ignored: names no subscription'::text, NULL::bigint,
                                NULL::bigint;
            RETURN;
        END IF;
        SELECT s.user_id INTO v_user FROM public.user_subscriptions s
         WHERE s.payment_provider = p_provider AND s.provider_subscription_id = v_ref;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'subscription % is not known yet', v_ref USING ERRCODE = 'P0002';
        END IF;
    ELSE
        RETURN QUERY SELECT 'ignored: event type not handled'::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    -- Once per event id: a replay (or a concurrent delivery, which waits here) stops now.
    INSERT INTO public.billing_webhook_events AS e
           (provider, event_id, event_type, event_created_at, user_id, outcome, received_at)
    VALUES (p_provider, p_event_id, p_event_type, p_event_created, v_user, 'applied', now())
    ON CONFLICT (provider, event_id) DO NOTHING
    RETURNING e.id INTO v_event_row;
    IF v_event_row IS NULL THEN
        RETURN QUERY SELECT 'duplicate'::text, v_user, NULL::bigint;
        RETURN;
    END IF;

    PERFORM 1 FROM public.user_quotas q WHERE q.user_id = v_user FOR UPDATE;

    IF p_event_type = 'checkout.session.completed' THEN
        IF EXISTS (SELECT 1 FROM public.user_subscriptions s
                    WHERE s.payment_provider = p_provider AND s.provider_subscription_id = v_ref)
        THEN
            UPDATE public.billing_webhook_events e SET outcome = 'subscription already known'
             WHERE e.id = v_event_row;
            RETURN QUERY SELECT 'applied'::text, v_user, NULL::bigint;
            RETURN;
        END IF;
        v_new := public.subscription_switch(
            v_user, v_tier.id, 'monthly', now(), now() + interval '1 month', p_provider,
            coalesce(p_object->>'customer', ''), v_ref, p_event_created);
        v_amount := public.billing_minor_units(p_object, 'amount_total');
        IF v_amount IS NOT NULL THEN
            INSERT INTO public.payment_history
                   (user_id, subscription_id, amount, currency, status, description,
                    payment_provider, provider_payment_id, period_start, period_end, created_at)
            SELECT v_user, v_new, v_amount, v_currency, 'succeeded',
                   left('Subscription to ' || v_tier.name, 300), p_provider,
                   coalesce(nullif(p_object->>'invoice', ''), p_object->>'id', p_event_id),
                   s.current_period_start, s.current_period_end, now()
              FROM public.user_subscriptions s WHERE s.id = v_new
            ON CONFLICT (provider_payment_id) DO NOTHING;
        END IF;
        PERFORM public.write_audit_log(
            p_event_type => 'subscription_started', p_user_id => v_user,
            p_details => jsonb_build_object('tier', v_tier.slug, 'provider', p_provider,
                                            'event_id', p_event_id),
            p_target_type => 'user_subscription', p_target_id => v_new::text);
        UPDATE public.billing_webhook_events e SET subscription_id = v_new WHERE e.id = v_event_row;
        RETURN QUERY SELECT 'applied'::text, v_user, v_new;
        RETURN;
    END IF;

    SELECT * INTO v_sub FROM public.user_subscriptions s
     WHERE s.payment_provider = p_provider AND s.provider_subscription_id = v_ref FOR UPDATE;
    UPDATE public.billing_webhook_events e SET subscription_id = v_sub.id WHERE e.id = v_event_row;
    v_newer := p_event_created >= coalesce(v_sub.provider_event_at, '-infinity'::timestamptz);

    IF p_event_type = 'customer.subscription.deleted' THEN
        IF v_sub.status IN ('trialing', 'active', 'past_due') THEN
            SELECT * INTO v_free FROM public.subscription_tiers t WHERE t.slug = 'free';
            IF NOT FOUND THEN
                RAISE EXCEPTION 'the free tier is missing' USING ERRCODE = '55000';
            END IF;
            SELECT b.period_start, b.period_end INTO v_start, v_end
              FROM public.quota_period_bounds(now()) b;
            v_new := public.subscription_switch(v_user, v_free.id, 'monthly', v_start, v_end);
            UPDATE public.user_subscriptions s SET provider_event_at = p_event_created
             WHERE s.id = v_sub.id;
            PERFORM public.write_audit_log(
                p_event_type => 'subscription_ended', p_user_id => v_user, p_severity => 'warning',
                p_details => jsonb_build_object('provider', p_provider, 'event_id', p_event_id),
                p_target_type => 'user_subscription', p_target_id => v_sub.id::text);
        ELSE
            UPDATE public.billing_webhook_events e SET outcome = 'subscription already ended'
             WHERE e.id = v_event_row;
        END IF;
        RETURN QUERY SELECT 'applied'::text, v_user, v_sub.id;
        RETURN;
    END IF;

    -- An invoice: its payment first, whatever its order among the events.
    v_start := public.billing_epoch(p_object #>> '{lines,data,0,period,start}');
    v_end := public.billing_epoch(p_object #>> '{lines,data,0,period,end}');
    IF v_start IS NULL OR v_end IS NULL OR v_end <= v_start THEN
        v_start := public.billing_epoch(p_object->>'period_start');
        v_end := public.billing_epoch(p_object->>'period_end');
    END IF;
    IF v_end <= v_start THEN
        v_start := NULL;
        v_end := NULL;
    END IF;

    IF p_event_type = 'invoice.payment_failed' THEN
        v_amount := public.billing_minor_units(p_object, 'amount_due');
        v_payment_id := coalesce(p_object->>'id', p_event_id) || '#failed-'
                        || coalesce(nullif(p_object->>'attempt_count', ''), '1');
    ELSE
        v_amount := public.billing_minor_units(p_object, 'amount_paid');
        v_payment_id := coalesce(p_object->>'id', p_event_id);
    END IF;
    INSERT INTO public.payment_history
           (user_id, subscription_id, amount, currency, status, description, payment_provider,
            provider_payment_id, period_start, period_end, created_at)
    VALUES (v_user, v_sub.id, coalesce(v_amount, 0), v_currency,
            CASE WHEN p_event_type = 'invoice.payment_failed' THEN 'failed' ELSE 'succeeded' END,
            left(coalesce(nullif(p_object->>'description', ''),
                          CASE WHEN p_event_type = 'invoice.payment_failed'
                               THEN 'Payment failed' ELSE 'Invoice paid' END), 300),
            p_provider, v_payment_id, v_start, v_end, now())
    ON CONFLICT (provider_payment_id) DO NOTHING;

    IF v_sub.status NOT IN ('trialing', 'active', 'past_due') THEN
        UPDATE public.billing_webhook_events e SET outcome = 'payment of an ended subscription'
         WHERE e.id = v_event_row;
    ELSIF p_event_type = 'invoice.payment_failed' AND NOT v_newer THEN
        UPDATE public.billing_webhook_events e SET outcome = 'older than the last event applied'
         WHERE e.id = v_event_row;
    ELSIF p_event_type = 'invoice.payment_failed' THEN
        IF v_sub.status <> 'past_due' THEN
            UPDATE public.user_subscriptions s
               SET status = 'past_due', provider_event_at = p_event_created, updated_at = now()
             WHERE s.id = v_sub.id;
            PERFORM public.write_audit_log(
                p_event_type => 'payment_failed', p_user_id => v_user, p_severity => 'warning',
                p_details => jsonb_build_object('provider', p_provider, 'event_id', p_event_id),
                p_target_type => 'user_subscription', p_target_id => v_sub.id::text);
        END IF;
    ELSIF v_newer OR v_end > v_sub.current_period_start THEN
        -- A payment. It counts when it is the latest word, or when its invoice covers the
        -- current period (the first invoice is often sent before its checkout event). Its
        -- period is the provider's word on the subscription's, when it reaches past the
        -- current one's start (a late invoice of an earlier period moves nothing).
        UPDATE public.user_subscriptions s
           SET status = 'active',
               current_period_start = CASE WHEN v_end > s.current_period_start
                                           THEN v_start ELSE s.current_period_start END,
               current_period_end = CASE WHEN v_end > s.current_period_start
                                         THEN v_end ELSE s.current_period_end END,
               provider_event_at = greatest(s.provider_event_at, p_event_created),
               updated_at = now()
         WHERE s.id = v_sub.id;
        IF v_sub.status = 'past_due' THEN
            PERFORM public.write_audit_log(
                p_event_type => 'subscription_reactivated', p_user_id => v_user,
                p_details => jsonb_build_object('provider', p_provider, 'event_id', p_event_id),
                p_target_type => 'user_subscription', p_target_id => v_sub.id::text);
        END IF;
    ELSE
        UPDATE public.billing_webhook_events e SET outcome = 'older than the last event applied'
         WHERE e.id = v_event_row;
    END IF;
    RETURN QUERY SELECT 'applied'::text, v_user, v_sub.id;
END
$$;
REVOKE ALL ON FUNCTION public.apply_billing_event(
    text, text, text, timestamp with time zone, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.apply_billing_event(
    text, text, text, timestamp with time zone, jsonb) TO witchcraft_app;
