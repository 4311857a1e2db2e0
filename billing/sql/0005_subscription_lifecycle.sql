-- The billing lifecycle (issue 8): plan changes asked for by the user, the payment provider's
-- events (webhooks), and quota alerts that follow the plan.
--
--   upgrade      paid through the provider's checkout; its checkout.session.completed event
--                (apply_billing_event) starts the new subscription at once and raises the
--                quota's limits in the current period (what was used stays used)
--   downgrade /  schedule_subscription_change: the current subscription cancels at its period's
--   cancel       end (cancel_at_period_end) and names the tier that follows (scheduled_tier_id,
--                NULL = free); monthly_maintenance makes the move. resume_subscription undoes it
--   payments     invoice.paid (active again, period moved on), invoice.payment_failed
--                (past_due: the plan's limits stay for a 7-day grace after the period's end,
--                then monthly_maintenance expires it to free), customer.subscription.deleted
--                (ended now, the user on free now)
--
-- Every function is SECURITY DEFINER (the billing tables are not writable by the runtime role)
-- with search_path pinned, pg_temp last, every name qualified, and checks its caller first.
-- Lock order as in every quota flow (billing/sql/0002): the user's user_quotas row first, then
-- the subscription.

-- billing_webhook_events: admins read it; apply_billing_event (as owner) writes it.
ALTER TABLE public.billing_webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_webhook_events FORCE ROW LEVEL SECURITY;
REVOKE ALL ON public.billing_webhook_events FROM PUBLIC;
GRANT SELECT ON public.billing_webhook_events TO witchcraft_app;
CREATE POLICY billing_webhook_events_select_admin ON public.billing_webhook_events FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

-- resolve_outgrown_alerts(user): resolve the open alerts of the quota's current period that
-- its limits no longer justify (the plan grew, or a staff member reset it). Returns how many.
-- Internal: called by the SECURITY DEFINER functions below.
CREATE OR REPLACE FUNCTION public.resolve_outgrown_alerts(p_user_id bigint)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_resolved integer;
BEGIN
    UPDATE public.usage_alerts AS a
       SET resolved_at = now()
      FROM public.user_quotas q
     WHERE q.user_id = p_user_id
       AND a.user_id = p_user_id
       AND a.resolved_at IS NULL
       AND a.period_start = q.period_start
       AND NOT (
            CASE a.metric WHEN 'tokens' THEN q.tokens_limit::numeric ELSE q.cost_limit END > 0
            AND CASE a.metric WHEN 'tokens' THEN q.tokens_used::numeric ELSE q.cost_used END * 100
                >= CASE a.metric WHEN 'tokens' THEN q.tokens_limit::numeric ELSE q.cost_limit END
                   * a.threshold_percent);
    GET DIAGNOSTICS v_resolved = ROW_COUNT;
    RETURN v_resolved;
END
$$;
REVOKE ALL ON FUNCTION public.resolve_outgrown_alerts(bigint) FROM PUBLIC;

-- raise_quota_alerts(user), second version: as before (billing/sql/0002), and an alert of the
-- current period that was resolved (the plan grew, the quota was reset) fires again when the
-- quota reaches its threshold again: "once per period" means once per crossing that is still
-- true, not never again. A fired alert is to be mailed (notified_at NULL), and the transaction
-- is flagged (app.alerts_raised) so that the caller knows to send the mail after commit
-- without another query.
CREATE OR REPLACE FUNCTION public.raise_quota_alerts(p_user_id bigint)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_created integer;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    INSERT INTO public.usage_alerts AS ua
           (user_id, alert_type, metric, threshold_percent, period_start, value_at_trigger,
            limit_at_trigger, triggered_at)
    SELECT q.user_id, t.alert_type, t.metric, t.threshold_percent, q.period_start, t.used,
           t.lim, now()
      FROM public.user_quotas q
     CROSS JOIN LATERAL (VALUES
            ('warning', 'tokens', 80, q.tokens_used::numeric, q.tokens_limit::numeric),
            ('exceeded', 'tokens', 100, q.tokens_used::numeric, q.tokens_limit::numeric),
            ('warning', 'cost', 80, q.cost_used, q.cost_limit),
            ('exceeded', 'cost', 100, q.cost_used, q.cost_limit)
           ) AS t(alert_type, metric, threshold_percent, used, lim)
     WHERE q.user_id = p_user_id
       AND t.lim > 0
       AND t.used * 100 >= t.lim * t.threshold_percent
    ON CONFLICT (user_id, alert_type, metric, period_start) DO UPDATE
       SET value_at_trigger = excluded.value_at_trigger,
           limit_at_trigger = excluded.limit_at_trigger,
           triggered_at = excluded.triggered_at,
           notified_at = NULL,
           acknowledged_at = NULL,
           acknowledged_by_id = NULL,
           resolved_at = NULL
     WHERE ua.resolved_at IS NOT NULL;
    GET DIAGNOSTICS v_created = ROW_COUNT;
    IF v_created > 0 THEN
        PERFORM set_config('app.alerts_raised', 'true', true);
    END IF;
    RETURN v_created;
END
$$;
REVOKE ALL ON FUNCTION public.raise_quota_alerts(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.raise_quota_alerts(bigint) TO witchcraft_app;

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
    bigint, integer, text, timestamptz, timestamptz, text, text, text, timestamptz) FROM PUBLIC;

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

-- resume_subscription(user): undo a scheduled downgrade or cancellation before it takes effect.
-- Returns false when nothing was scheduled. Audited (subscription_change_undone).
CREATE OR REPLACE FUNCTION public.resume_subscription(p_user_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    UPDATE public.user_subscriptions AS s
       SET cancel_at_period_end = false, scheduled_tier_id = NULL, canceled_at = NULL,
           updated_at = now()
     WHERE s.user_id = p_user_id AND s.status IN ('trialing', 'active', 'past_due')
       AND s.cancel_at_period_end
    RETURNING s.id INTO v_id;
    IF v_id IS NULL THEN
        RETURN false;
    END IF;
    PERFORM public.write_audit_log(
        p_event_type => 'subscription_change_undone',
        p_user_id => p_user_id,
        p_target_type => 'user_subscription',
        p_target_id => v_id::text);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.resume_subscription(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.resume_subscription(bigint) TO witchcraft_app;

-- billing_minor_units(object, key): a provider's amount in minor units (cents) as dollars;
-- NULL when absent or not a whole non-negative number. Internal.
CREATE OR REPLACE FUNCTION public.billing_minor_units(p_object jsonb, p_key text)
RETURNS numeric
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_object->>p_key ~ '^[0-9]{1,12}$' THEN (p_object->>p_key)::numeric / 100 END
$$;
REVOKE ALL ON FUNCTION public.billing_minor_units(jsonb, text) FROM PUBLIC;

-- billing_epoch(value): a provider's Unix timestamp as timestamptz; NULL when not one. Internal.
CREATE OR REPLACE FUNCTION public.billing_epoch(p_value text)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_value ~ '^[0-9]{1,11}$' THEN to_timestamp(p_value::bigint) END
$$;
REVOKE ALL ON FUNCTION public.billing_epoch(text) FROM PUBLIC;

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
REVOKE ALL ON FUNCTION public.apply_billing_event(text, text, text, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.apply_billing_event(text, text, text, timestamptz, jsonb)
    TO witchcraft_app;

-- mark_alerts_notified(ids): the alerts' mail went out (notified_at = now()). Service context
-- only. Returns how many were marked.
CREATE OR REPLACE FUNCTION public.mark_alerts_notified(p_alert_ids bigint[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_marked integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'only the service context marks alerts notified' USING ERRCODE = '42501';
    END IF;
    UPDATE public.usage_alerts a SET notified_at = now()
     WHERE a.id = ANY (p_alert_ids) AND a.notified_at IS NULL;
    GET DIAGNOSTICS v_marked = ROW_COUNT;
    RETURN v_marked;
END
$$;
REVOKE ALL ON FUNCTION public.mark_alerts_notified(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.mark_alerts_notified(bigint[]) TO witchcraft_app;

-- monthly_maintenance(), second version (billing/sql/0003 for the rest): a subscription set to
-- cancel at its period's end moves the user to its scheduled_tier_id (a downgrade, counted in
-- subscriptions_downgraded; the provider's references move along) or, with none, to free
-- (subscriptions_canceled), as before. Every other step is unchanged.
CREATE OR REPLACE FUNCTION public.monthly_maintenance() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := now();
    v_month record;
    v_report_start date;
    v_report_end date;
    v_free_tier integer;
    v_user bigint;
    v_sub public.user_subscriptions%ROWTYPE;
    v_start timestamptz;
    v_end timestamptz;
    v_step interval;
    v_open_before bigint;
    v_open_after bigint;
    v_rolled integer := 0;
    v_alerts integer := 0;
    v_canceled integer := 0;
    v_expired integer := 0;
    v_renewed integer := 0;
    v_report_rows integer := 0;
    v_downgraded integer := 0;
    v_next_tier integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'monthly_maintenance: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    SELECT b.period_start, b.period_end INTO v_month FROM public.quota_period_bounds(v_now) b;
    SELECT t.id INTO v_free_tier FROM public.subscription_tiers t WHERE t.slug = 'free';

    FOR v_user IN
        SELECT q.user_id FROM public.user_quotas q WHERE q.period_end <= v_now
        UNION
        SELECT s.user_id FROM public.user_subscriptions s
         WHERE s.status IN ('trialing', 'active', 'past_due') AND s.current_period_end <= v_now
        ORDER BY 1
    LOOP
        PERFORM 1 FROM public.user_quotas q WHERE q.user_id = v_user FOR UPDATE;

        -- 1. The subscription (at most one current: user_subscriptions_one_current).
        SELECT s.* INTO v_sub FROM public.user_subscriptions s
         WHERE s.user_id = v_user AND s.status IN ('trialing', 'active', 'past_due')
           AND s.current_period_end <= v_now
           FOR UPDATE;
        IF FOUND THEN
            IF v_sub.cancel_at_period_end
               OR (v_sub.status = 'past_due' AND v_sub.current_period_end + interval '7 days' <= v_now)
            THEN
                IF v_free_tier IS NULL THEN
                    RAISE EXCEPTION 'monthly_maintenance: the free tier is missing'
                        USING ERRCODE = '55000';
                END IF;
                -- The old row leaves the current states first: one current row per user.
                -- canceled_at keeps the moment the user asked to cancel, when known. A
                -- downgrade to a paid tier keeps the provider's subscription: its references
                -- move to the new row (they are unique).
                -- (An unpaid subscription goes to free, whatever was scheduled.)
                v_next_tier := CASE WHEN v_sub.cancel_at_period_end AND v_sub.status <> 'past_due'
                                    THEN coalesce(v_sub.scheduled_tier_id, v_free_tier)
                                    ELSE v_free_tier END;
                UPDATE public.user_subscriptions s
                   SET status = CASE WHEN v_sub.cancel_at_period_end THEN 'canceled'
                                     ELSE 'expired' END,
                       canceled_at = CASE WHEN v_sub.cancel_at_period_end
                                          THEN coalesce(s.canceled_at, v_now)
                                          ELSE s.canceled_at END,
                       provider_subscription_id = CASE WHEN v_next_tier <> v_free_tier THEN ''
                                                       ELSE s.provider_subscription_id END,
                       updated_at = v_now
                 WHERE s.id = v_sub.id;
                IF v_next_tier = v_free_tier THEN
                    INSERT INTO public.user_subscriptions
                           (user_id, tier_id, status, billing_cycle, current_period_start,
                            current_period_end, cancel_at_period_end, canceled_at,
                            payment_provider, provider_customer_id, provider_subscription_id,
                            created_at, updated_at)
                    VALUES (v_user, v_free_tier, 'active', 'monthly', v_month.period_start,
                            v_month.period_end, false, NULL, '', '', '', v_now, v_now);
                ELSE
                    -- The next period of the same cycle, caught up to now.
                    v_step := CASE v_sub.billing_cycle WHEN 'yearly' THEN interval '1 year'
                                                       ELSE interval '1 month' END;
                    v_start := v_sub.current_period_start;
                    v_end := v_sub.current_period_end;
                    WHILE v_end <= v_now LOOP
                        v_start := v_end;
                        v_end := ((v_end AT TIME ZONE 'UTC') + v_step) AT TIME ZONE 'UTC';
                    END LOOP;
                    INSERT INTO public.user_subscriptions
                           (user_id, tier_id, status, billing_cycle, current_period_start,
                            current_period_end, cancel_at_period_end, canceled_at,
                            payment_provider, provider_customer_id, provider_subscription_id,
                            provider_event_at, created_at, updated_at)
                    VALUES (v_user, v_next_tier, 'active', v_sub.billing_cycle, v_start, v_end,
                            false, NULL, v_sub.payment_provider, v_sub.provider_customer_id,
                            v_sub.provider_subscription_id, v_sub.provider_event_at, v_now,
                            v_now);
                END IF;
                IF v_sub.cancel_at_period_end AND v_next_tier <> v_free_tier THEN
                    v_downgraded := v_downgraded + 1;
                ELSIF v_sub.cancel_at_period_end THEN
                    v_canceled := v_canceled + 1;
                ELSE
                    v_expired := v_expired + 1;
                END IF;
            ELSIF v_sub.status IN ('active', 'trialing') THEN
                -- Whole cycles, computed in UTC whatever the session's TimeZone, until the
                -- period covers now (a missed month does not leave it behind).
                v_step := CASE v_sub.billing_cycle WHEN 'yearly' THEN interval '1 year'
                                                   ELSE interval '1 month' END;
                v_start := v_sub.current_period_start;
                v_end := v_sub.current_period_end;
                WHILE v_end <= v_now LOOP
                    v_start := v_end;
                    v_end := ((v_end AT TIME ZONE 'UTC') + v_step) AT TIME ZONE 'UTC';
                END LOOP;
                UPDATE public.user_subscriptions s
                   SET status = 'active',
                       current_period_start = v_start,
                       current_period_end = v_end,
                       updated_at = v_now
                 WHERE s.id = v_sub.id;
                v_renewed := v_renewed + 1;
            END IF;
            -- past_due within its 7-day grace: left alone until paid or expired.
        END IF;

        -- The quota follows the plan at once, whether or not its period rolls below.
        IF v_next_tier IS NOT NULL THEN
            UPDATE public.user_quotas AS q
               SET tokens_limit = t.monthly_token_limit, cost_limit = t.monthly_cost_limit,
                   updated_at = v_now
              FROM public.subscription_tiers t
             WHERE t.id = v_next_tier AND q.user_id = v_user;
        END IF;
        v_next_tier := NULL;

        -- 2. The quota, with the limits of the plan decided above. roll_quota_forward resolves
        -- the open alerts of earlier periods; they are counted around it.
        SELECT count(*) INTO v_open_before FROM public.usage_alerts a
         WHERE a.user_id = v_user AND a.resolved_at IS NULL
           AND a.period_start < v_month.period_start;
        IF public.roll_quota_forward(v_user) THEN
            v_rolled := v_rolled + 1;
            SELECT count(*) INTO v_open_after FROM public.usage_alerts a
             WHERE a.user_id = v_user AND a.resolved_at IS NULL
               AND a.period_start < v_month.period_start;
            v_alerts := v_alerts + (v_open_before - v_open_after);
        END IF;
    END LOOP;

    -- 3. The previous calendar month's report, from the daily roll-up (UTC days).
    v_report_end := (v_month.period_start AT TIME ZONE 'UTC')::date;
    v_report_start := (v_report_end - interval '1 month')::date;

    WITH daily AS (
        SELECT d.user_id, d.provider_id, d.model_id, d.request_count, d.total_tokens, d.cost
          FROM public.ai_usage_daily d
         WHERE d.usage_date >= v_report_start AND d.usage_date < v_report_end
    ), keyed AS (
        SELECT 'provider'::text AS dimension, p.slug::text AS key, d.*
          FROM daily d
          JOIN public.ai_providers p ON p.id = d.provider_id
        UNION ALL
        SELECT 'model', p.slug || '/' || m.name, d.*
          FROM daily d
          JOIN public.ai_models m ON m.id = d.model_id
          JOIN public.ai_providers p ON p.id = m.provider_id
        UNION ALL
        SELECT 'tier', coalesce(t.slug, 'free'), d.*
          FROM daily d
          LEFT JOIN public.user_subscriptions s
                 ON s.user_id = d.user_id AND s.status IN ('trialing', 'active', 'past_due')
          LEFT JOIN public.subscription_tiers t ON t.id = s.tier_id
    ), report AS (
        SELECT k.dimension, k.key, sum(k.request_count)::bigint AS requests,
               sum(k.total_tokens)::bigint AS tokens, sum(k.cost) AS cost,
               count(DISTINCT k.user_id) AS users
          FROM keyed k
         GROUP BY k.dimension, k.key
    ), upserted AS (
        INSERT INTO public.usage_monthly_reports AS r
               (year, month, dimension, key, requests, tokens, cost, users, generated_at)
        SELECT extract(year FROM v_report_start)::smallint,
               extract(month FROM v_report_start)::smallint,
               rp.dimension, rp.key, rp.requests, rp.tokens, rp.cost, rp.users, v_now
          FROM report rp
        ON CONFLICT (year, month, dimension, key) DO UPDATE
           SET requests = excluded.requests,
               tokens = excluded.tokens,
               cost = excluded.cost,
               users = excluded.users,
               generated_at = excluded.generated_at
         WHERE (r.requests, r.tokens, r.cost, r.users)
               IS DISTINCT FROM (excluded.requests, excluded.tokens, excluded.cost, excluded.users)
        RETURNING 1
    ), stale AS (
        -- Keys of that month that no longer have usage (e.g. a user's plan changed since).
        DELETE FROM public.usage_monthly_reports r
         WHERE r.year = extract(year FROM v_report_start)
           AND r.month = extract(month FROM v_report_start)
           AND NOT EXISTS (SELECT 1 FROM report rp
                            WHERE rp.dimension = r.dimension AND rp.key = r.key)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM stale) INTO v_report_rows;

    RETURN jsonb_build_object(
        'quotas_rolled', v_rolled,
        'alerts_resolved', v_alerts,
        'subscriptions_canceled', v_canceled,
        'subscriptions_downgraded', v_downgraded,
        'subscriptions_expired', v_expired,
        'subscriptions_renewed', v_renewed,
        'report_rows', v_report_rows);
END
$$;
REVOKE ALL ON FUNCTION public.monthly_maintenance() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monthly_maintenance() TO witchcraft_app;
