"""The functions billing owns, adopted from its numbered SQL files.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0018_audit_compression"),
        ("agents", "0010_sessions_activity_index"),
        ("billing", "0012_monthly_reports"),
        ("usage", "0012_models_of_active_providers"),
        ("witchcraft", "0003_monitoring_windows"),
    ]

    operations = [
        DefineSQL(
            name="public.apply_billing_event",
            sha256="07371aabf0e555141c8b46ae19b0e5f608d3490e378764a9a78595f5c0c22b62",
            adopted=True,
            sql=r"""-- apply_billing_event(provider, event id, type, created, object): apply one verified event of
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
""",
        ),
        DefineSQL(
            name="public.billing_epoch",
            sha256="ab94f5e603e3e1b26863ebc41d40c17621c55391fe575a5b67d4f51aa3b6efb0",
            adopted=True,
            sql=r"""-- billing_epoch(value): a provider's Unix timestamp as timestamptz; NULL when not one. Internal.
CREATE OR REPLACE FUNCTION public.billing_epoch(p_value text)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_value ~ '^[0-9]{1,11}$' THEN to_timestamp(p_value::bigint) END
$$;
REVOKE ALL ON FUNCTION public.billing_epoch(text) FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.billing_minor_units",
            sha256="f360d38fcd93ba2abb84fe6e841321b2625f4073c15138dd74d740a6dd34d341",
            adopted=True,
            sql=r"""-- billing_minor_units(object, key): a provider's amount in minor units (cents) as dollars;
-- NULL when absent or not a whole non-negative number. Internal.
CREATE OR REPLACE FUNCTION public.billing_minor_units(p_object jsonb, p_key text)
RETURNS numeric
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_object->>p_key ~ '^[0-9]{1,12}$' THEN (p_object->>p_key)::numeric / 100 END
$$;
REVOKE ALL ON FUNCTION public.billing_minor_units(jsonb, text) FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.change_user_tier",
            sha256="f0a73a4efb8a01c03d7ea3070a6ee70fa3ffbd5190f7f49aa9c6ffe433dfddc2",
            adopted=True,
            sql=r"""-- change_user_tier(user, tier slug), second version (staff, billing/sql/0004): the same move,
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
""",
        ),
        DefineSQL(
            name="public.check_and_consume_quota",
            sha256="a5d31dc53c35628176e52cf341cb91602f39de0c05050b80367afc2de2d485fa",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.check_and_consume_quota(
    p_user_id bigint, p_tokens bigint, p_cost numeric, p_ttl_seconds integer DEFAULT 900
) RETURNS TABLE(allowed boolean, tokens_remaining bigint, cost_remaining numeric, reason text,
                reservation_id bigint, expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_cost numeric := round(p_cost, 6);
    v_quota public.user_quotas%ROWTYPE;
    v_reserved boolean;
    v_changed boolean;
    v_reservation public.quota_reservations%ROWTYPE;
BEGIN
    PERFORM auth.require_record_for(p_user_id);
    IF p_tokens IS NULL OR p_tokens < 0 THEN
        RAISE EXCEPTION 'tokens must be a non-negative number, got %', p_tokens
            USING ERRCODE = '22023';
    END IF;
    IF p_cost IS NULL OR p_cost < 0 THEN
        RAISE EXCEPTION 'cost must be a non-negative amount, got %', p_cost
            USING ERRCODE = '22023';
    END IF;
    IF p_ttl_seconds IS NULL OR p_ttl_seconds < 1 OR p_ttl_seconds > 86400 THEN
        RAISE EXCEPTION 'a reservation lives between 1 and 86400 seconds, got %', p_ttl_seconds
            USING ERRCODE = '22023';
    END IF;

    FOR attempt IN 1..2 LOOP
        UPDATE public.user_quotas AS q
           SET tokens_used = q.tokens_used + p_tokens,
               cost_used = q.cost_used + v_cost,
               updated_at = now()
         WHERE q.user_id = p_user_id
           AND q.period_end > now()
           AND p_tokens <= q.tokens_limit - q.tokens_used
           AND v_cost <= q.cost_limit - q.cost_used
           AND NOT public.quota_has_expired_holds(p_user_id)
        RETURNING q.* INTO v_quota;
        v_reserved := FOUND;
        EXIT WHEN v_reserved OR attempt = 2;
        PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
        EXIT WHEN NOT FOUND;
        v_changed := public.quota_reservations_release_expired(p_user_id) > 0;
        v_changed := public.roll_quota_forward(p_user_id) OR v_changed;
        EXIT WHEN NOT v_changed;
    END LOOP;

    IF v_reserved THEN
        INSERT INTO public.quota_reservations AS r
               (user_id, tokens, cost, period_start, created_at, expires_at)
        VALUES (p_user_id, p_tokens, v_cost, v_quota.period_start, now(),
                now() + make_interval(secs => p_ttl_seconds))
        RETURNING r.* INTO v_reservation;
        IF public.quota_may_alert(v_quota) THEN
            PERFORM public.raise_quota_alerts(p_user_id);
        END IF;
        RETURN QUERY SELECT true,
                            greatest(v_quota.tokens_limit - v_quota.tokens_used, 0)::bigint,
                            greatest(v_quota.cost_limit - v_quota.cost_used, 0)::numeric,
                            NULL::text, v_reservation.id, v_reservation.expires_at;
        RETURN;
    END IF;

    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 0::bigint, 0::numeric, 'no_quota'::text, NULL::bigint,
                            NULL::timestamptz;
        RETURN;
    END IF;
    RETURN QUERY SELECT false,
                        greatest(v_quota.tokens_limit - v_quota.tokens_used, 0)::bigint,
                        greatest(v_quota.cost_limit - v_quota.cost_used, 0)::numeric,
                        CASE WHEN p_tokens > v_quota.tokens_limit - v_quota.tokens_used
                             THEN 'tokens_exceeded' ELSE 'cost_exceeded' END,
                        NULL::bigint, NULL::timestamptz;
END
$$;
REVOKE ALL ON FUNCTION public.check_and_consume_quota(bigint, bigint, numeric, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.check_and_consume_quota(
    bigint, bigint, numeric, integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.generate_monthly_report",
            sha256="e128d67af2858064476c048656cbb808b32c62b2eebe4363c268fa23bfad0dfb",
            adopted=True,
            sql=r"""-- generate_monthly_report(month): store the report of the calendar month (UTC) that starts on
-- p_month, from the daily roll-up (ai_usage_daily, UTC days) and the subscription history.
-- Returns how many rows were inserted, changed or removed (0 when the stored report was right).
-- Service context only (42501). 22023: not the first day of a month, a month before 2000, or a
-- month that has not ended.
--
-- The plan of a user for the month: the subscription that was their plan for the longest part
-- of it; on a tie, the later one. A subscription is the user's plan from its start (created_at,
-- or its first period's start when that is earlier: rows made with a period already running)
-- until the user's next subscription starts; the last one runs on while it is current, and an
-- ended one with no successor ends at its period's end (or at its last change, if earlier).
-- So a pro user all month who was downgraded on the last day counts as pro, and one who
-- upgraded on the 2nd counts under the new plan. A user with usage and no subscription during
-- the month (history older than the subscription rows) counts under their current plan, else
-- free.
CREATE OR REPLACE FUNCTION public.generate_monthly_report(p_month date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := now();
    v_end date;
    v_from timestamptz;
    v_to timestamptz;
    v_rows integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'generate_monthly_report: only the service context may generate reports'
            USING ERRCODE = '42501';
    END IF;
    IF p_month IS NULL OR p_month <> date_trunc('month', p_month)::date THEN
        RAISE EXCEPTION 'generate_monthly_report: give the first day of a month'
            USING ERRCODE = '22023';
    END IF;
    IF p_month < date '2000-01-01' THEN
        RAISE EXCEPTION 'generate_monthly_report: reports cover months from 2000-01 on'
            USING ERRCODE = '22023';
    END IF;
    v_end := (p_month + interval '1 month')::date;
    v_from := p_month::timestamp AT TIME ZONE 'UTC';
    v_to := v_end::timestamp AT TIME ZONE 'UTC';
    IF v_to > v_now THEN
        RAISE EXCEPTION 'generate_monthly_report: % has not ended yet', to_char(p_month, 'YYYY-MM')
            USING ERRCODE = '22023';
    END IF;

    WITH daily AS (
        SELECT d.user_id, d.provider_id, d.model_id, d.request_count, d.total_tokens, d.cost
          FROM public.ai_usage_daily d
         WHERE d.usage_date >= p_month AND d.usage_date < v_end
    ), started AS (
        SELECT s.id, s.user_id, s.tier_id,
               s.status IN ('trialing', 'active', 'past_due') AS is_current,
               least(s.created_at, s.current_period_start) AS from_at,
               least(s.current_period_end, s.updated_at) AS ended_at
          FROM public.user_subscriptions s
    ), spans AS (
        SELECT st.id, st.user_id, st.tier_id, st.is_current, st.from_at,
               coalesce(lead(st.from_at) OVER (PARTITION BY st.user_id
                                               ORDER BY st.from_at, st.id),
                        CASE WHEN st.is_current THEN 'infinity'::timestamptz
                             ELSE st.ended_at END) AS to_at
          FROM started st
    ), covered AS (
        SELECT sp.*,
               greatest(least(sp.to_at, v_to) - greatest(sp.from_at, v_from),
                        interval '0') AS covered
          FROM spans sp
    ), plans AS (
        -- One plan per user of the month (see above).
        SELECT DISTINCT ON (c.user_id) c.user_id, c.tier_id
          FROM covered c
         WHERE c.covered > interval '0'
            OR (c.is_current AND c.user_id IN (SELECT d.user_id FROM daily d))
         ORDER BY c.user_id, c.covered DESC, c.from_at DESC, c.id DESC
    ), members AS (
        SELECT m.user_id, coalesce(t.slug, 'free')::text AS tier
          FROM (SELECT p.user_id FROM plans p UNION SELECT d.user_id FROM daily d) m
          LEFT JOIN plans p ON p.user_id = m.user_id
          LEFT JOIN public.subscription_tiers t ON t.id = p.tier_id
    ), keyed AS (
        SELECT 'total'::text AS dimension, 'all'::text AS key, d.*
          FROM daily d
        UNION ALL
        SELECT 'provider', p.slug, d.*
          FROM daily d
          JOIN public.ai_providers p ON p.id = d.provider_id
        UNION ALL
        SELECT 'model', p.slug || '/' || m.name, d.*
          FROM daily d
          JOIN public.ai_models m ON m.id = d.model_id
          JOIN public.ai_providers p ON p.id = m.provider_id
        UNION ALL
        SELECT 'tier', mb.tier, d.*
          FROM daily d
          JOIN members mb ON mb.user_id = d.user_id
    ), used AS (
        SELECT k.dimension, k.key, sum(k.request_count)::bigint AS requests,
               sum(k.total_tokens)::bigint AS tokens, sum(k.cost) AS cost,
               count(DISTINCT k.user_id) AS users
          FROM keyed k
         GROUP BY k.dimension, k.key
    ), people AS (
        SELECT 'tier'::text AS dimension, mb.tier AS key, count(*) AS subscribers
          FROM members mb
         GROUP BY mb.tier
        UNION ALL
        SELECT 'total', 'all', count(*) FROM members  -- always one row: the report exists
    ), report AS (
        SELECT coalesce(u.dimension, pe.dimension) AS dimension, coalesce(u.key, pe.key) AS key,
               coalesce(u.requests, 0) AS requests, coalesce(u.tokens, 0) AS tokens,
               coalesce(u.cost, 0) AS cost, coalesce(u.users, 0) AS users,
               coalesce(pe.subscribers, 0) AS subscribers
          FROM used u
          FULL JOIN people pe ON pe.dimension = u.dimension AND pe.key = u.key
    ), upserted AS (
        INSERT INTO public.usage_monthly_reports AS r
               (year, month, dimension, key, requests, tokens, cost, users, subscribers,
                generated_at)
        SELECT extract(year FROM p_month)::smallint, extract(month FROM p_month)::smallint,
               rp.dimension, rp.key, rp.requests, rp.tokens, rp.cost, rp.users, rp.subscribers,
               v_now
          FROM report rp
        ON CONFLICT (year, month, dimension, key) DO UPDATE
           SET requests = excluded.requests,
               tokens = excluded.tokens,
               cost = excluded.cost,
               users = excluded.users,
               subscribers = excluded.subscribers,
               generated_at = excluded.generated_at
         WHERE (r.requests, r.tokens, r.cost, r.users, r.subscribers)
               IS DISTINCT FROM (excluded.requests, excluded.tokens, excluded.cost,
                                 excluded.users, excluded.subscribers)
        RETURNING 1
    ), stale AS (
        -- Keys of that month that no longer have usage or users.
        DELETE FROM public.usage_monthly_reports r
         WHERE r.year = extract(year FROM p_month)
           AND r.month = extract(month FROM p_month)
           AND NOT EXISTS (SELECT 1 FROM report rp
                            WHERE rp.dimension = r.dimension AND rp.key = r.key)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM stale) INTO v_rows;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.generate_monthly_report(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.generate_monthly_report(date) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.get_remaining_quota",
            sha256="b75da8ff2ad0fb2d6908595b8fd56a70e531ade4466e20865245f1b1ad6c1895",
            adopted=True,
            sql=r"""-- get_remaining_quota(user): limits, used, remaining (never negative) and percent used (rounded
-- to 2 places; NULL when the limit is 0) for tokens and cost, with the period. No row when the
-- user has no quota.
-- A read, never a write (STABLE, callable from any page): when the stored period has ended it
-- reports what roll_quota_forward would make of it, i.e. the current UTC month with nothing
-- used and the current plan's limits. The row itself rolls on the next consumption, usage record
-- or monthly maintenance.
CREATE OR REPLACE FUNCTION public.get_remaining_quota(p_user_id bigint)
RETURNS TABLE(
    tokens_limit bigint,
    tokens_used bigint,
    tokens_remaining bigint,
    tokens_percent_used numeric,
    cost_limit numeric,
    cost_used numeric,
    cost_remaining numeric,
    cost_percent_used numeric,
    period_start timestamptz,
    period_end timestamptz
)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    RETURN QUERY
    WITH stored AS (
        SELECT q.tokens_limit AS t_limit, q.tokens_used AS t_used,
               q.cost_limit AS c_limit, q.cost_used AS c_used,
               q.period_start AS p_start, q.period_end AS p_end
          FROM public.user_quotas q
         WHERE q.user_id = p_user_id
    ), effective AS (
        SELECT s.t_limit, s.t_used, s.c_limit, s.c_used, s.p_start, s.p_end
          FROM stored s
         WHERE s.p_end > now()
        UNION ALL
        SELECT coalesce(l.tokens_limit, s.t_limit), 0::bigint, coalesce(l.cost_limit, s.c_limit),
               0::numeric, b.period_start, b.period_end
          FROM stored s
         CROSS JOIN public.quota_period_bounds(now()) b
          LEFT JOIN public.quota_tier_limits(p_user_id) l ON true
         WHERE s.p_end <= now()
    )
    SELECT e.t_limit,
           e.t_used,
           greatest(e.t_limit - e.t_used, 0)::bigint,
           round(e.t_used * 100.0 / nullif(e.t_limit, 0), 2),
           e.c_limit,
           e.c_used,
           greatest(e.c_limit - e.c_used, 0)::numeric,
           round(e.c_used * 100.0 / nullif(e.c_limit, 0), 2),
           e.p_start,
           e.p_end
      FROM effective e;
END
$$;
REVOKE ALL ON FUNCTION public.get_remaining_quota(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_remaining_quota(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.mark_alerts_notified",
            sha256="82e33047f21f35097518fbf33fdbb836b41920dceb9a645107cf842c73dbabf5",
            adopted=True,
            sql=r"""-- mark_alerts_notified(ids): the alerts' mail went out (notified_at = now()). Service context
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
""",
        ),
        DefineSQL(
            name="public.quota_has_expired_holds",
            sha256="0698887bcbe93a7cfa0f43fdf303ba775048953e1c75ce93e71c0ca5caab7752",
            adopted=True,
            sql=r"""-- quota_has_expired_holds(user): has the user a reservation that expired unsettled and still
-- holds quota? One probe of quota_reservations_open. A plain SQL expression (no SET clause: it
-- is inlined into its callers, which pin their search_path; only its owner may call it), so
-- the hot paths pay for the release below only when there is something to give back.
CREATE OR REPLACE FUNCTION public.quota_has_expired_holds(p_user_id bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.quota_reservations r
         WHERE r.user_id = p_user_id AND r.settled_at IS NULL AND r.released_at IS NULL
           AND r.expires_at <= now())
$$;
REVOKE ALL ON FUNCTION public.quota_has_expired_holds(bigint) FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.quota_may_alert",
            sha256="a03913f4fc8fc572e90ba03490eba3d162077cdd09e4a7bae8f58ca0c16b68de",
            adopted=True,
            sql=r"""-- Quota flows on their fast path (bench/README.md, issue 10): the same results as before with
-- fewer statements per call.
--
-- * The roll-forward (roll_quota_forward) only when the quota's period has ended, which the
--   quota row itself says: most calls no longer run its UPDATE.
-- * The alerts (raise_quota_alerts) only when the quota has reached 80 % of a limit, the lowest
--   threshold: below it raise_quota_alerts can create or re-open nothing (quota_may_alert is
--   exactly its WHERE clause at the lowest threshold).
-- quota_may_alert(quota): has the quota reached 80 % of its token or of its cost limit (a limit
-- of 0 never alerts)? A plain SQL expression (no SET clause: it is inlined into its callers,
-- which pin their search_path; only its owner may call it directly).
CREATE OR REPLACE FUNCTION public.quota_may_alert(p_quota public.user_quotas)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (($1).tokens_limit > 0 AND ($1).tokens_used::numeric * 100 >= ($1).tokens_limit::numeric * 80)
        OR (($1).cost_limit > 0 AND ($1).cost_used * 100 >= ($1).cost_limit * 80)
$$;
REVOKE ALL ON FUNCTION public.quota_may_alert(user_quotas) FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.quota_period_bounds",
            sha256="dfca67d79d2cae046f8961fec4ed751a0938ff28d165b86084bf7ccafb10e450",
            adopted=True,
            sql=r"""-- Quotas: the reservation before an AI call, the monthly roll-forward, the 80 % / 100 % alerts
-- and the read of what is left (DESIGN.md "Quotas").
--
-- Every function here is SECURITY DEFINER (the quota and alert tables are not writable by the
-- runtime role), pins search_path with pg_temp last (a temporary object can never shadow ours),
-- qualifies every name, and first checks that the caller may act for p_user_id (the user
-- themself, an admin or the service context; 42501 otherwise).
--
-- Lock order: every flow that touches a quota takes the user_quotas row first, then anything
-- else (alerts, usage rows, roll-ups, agent sessions). Flows that took them the other way round
-- would deadlock against each other.
--
-- Periods are UTC calendar months: [first of the month 00:00 UTC, first of the next month).
-- quota_period_bounds(at): the UTC calendar month containing `at`. Computed in UTC whatever the
-- session's TimeZone (timestamptz + '1 month' would otherwise follow local DST rules).
CREATE OR REPLACE FUNCTION public.quota_period_bounds(p_at timestamptz)
RETURNS TABLE(period_start timestamptz, period_end timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT date_trunc('month', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
           (date_trunc('month', p_at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
$$;
REVOKE ALL ON FUNCTION public.quota_period_bounds(timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.quota_period_bounds(timestamp with time zone) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.quota_reservations_release_expired",
            sha256="a994ba80750559792796b1c7ba85397ff638f3ff91afb6c2b4dcd06f237853c4",
            adopted=True,
            sql=r"""-- quota_reservations_release_expired(user): give back the holds of the user's reservations that
-- expired unsettled (released_at set; a hold of an earlier quota period gives nothing back,
-- that period's counters are gone). The caller holds the user's quota row lock. Returns how
-- many it released. Internal: called by the SECURITY DEFINER functions, not granted.
CREATE OR REPLACE FUNCTION public.quota_reservations_release_expired(p_user_id bigint)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_released integer;
    v_tokens bigint;
    v_cost numeric;
BEGIN
    WITH released AS (
        UPDATE public.quota_reservations AS r
           SET released_at = now()
         WHERE r.user_id = p_user_id
           AND r.settled_at IS NULL AND r.released_at IS NULL
           AND r.expires_at <= now()
        RETURNING r.tokens, r.cost, r.period_start
    )
    SELECT count(*), coalesce(sum(rl.tokens) FILTER (WHERE rl.period_start = q.period_start), 0),
           coalesce(sum(rl.cost) FILTER (WHERE rl.period_start = q.period_start), 0)
      INTO v_released, v_tokens, v_cost
      FROM released rl
      LEFT JOIN public.user_quotas q ON q.user_id = p_user_id;
    IF v_tokens > 0 OR v_cost > 0 THEN
        UPDATE public.user_quotas AS q
           SET tokens_used = greatest(0, q.tokens_used - v_tokens),
               cost_used = greatest(0, q.cost_used - v_cost),
               updated_at = now()
         WHERE q.user_id = p_user_id;
    END IF;
    RETURN v_released;
END
$$;
REVOKE ALL ON FUNCTION public.quota_reservations_release_expired(bigint) FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.quota_tier_limits",
            sha256="9df5245b255ac4042c7e2b4c92bf6b446fa60caa9a0f42bc0121d7c6689bd0f8",
            adopted=True,
            sql=r"""-- quota_tier_limits(user): the monthly limits of the user's current plan: the subscription in
-- state trialing / active / past_due (at most one, a unique index says so), else the free tier.
-- No row at all when neither exists (callers then keep the limits the quota has). Internal: run
-- by the SECURITY DEFINER functions below, not granted to the runtime role.
CREATE OR REPLACE FUNCTION public.quota_tier_limits(p_user_id bigint)
RETURNS TABLE(tokens_limit bigint, cost_limit numeric)
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT t.monthly_token_limit, t.monthly_cost_limit
      FROM (
            SELECT s.tier_id, 1 AS preference
              FROM public.user_subscriptions s
             WHERE s.user_id = p_user_id AND s.status IN ('trialing', 'active', 'past_due')
            UNION ALL
            SELECT f.id, 2 FROM public.subscription_tiers f WHERE f.slug = 'free'
           ) candidate
      JOIN public.subscription_tiers t ON t.id = candidate.tier_id
     ORDER BY candidate.preference
     LIMIT 1
$$;
REVOKE ALL ON FUNCTION public.quota_tier_limits(bigint) FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.raise_quota_alerts",
            sha256="886ae2e16a1f513f8b63c1ff1c651187f920dbe1a5dde79e37c97feb0ff7c625",
            adopted=True,
            sql=r"""-- raise_quota_alerts(user), second version: as before (billing/sql/0002), and an alert of the
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
""",
        ),
        DefineSQL(
            name="public.release_expired_quota_reservations",
            sha256="575751b8ab381a4efa88a3029bb0d40ce3b93f3fbba77bc31aa3efdb2fd0bfc4",
            adopted=True,
            sql=r"""-- release_expired_quota_reservations(): the worker's sweep, every minute. Gives back the holds
-- of every expired unsettled reservation, user by user in user order (the quota row lock first;
-- a user whose quota row is locked right now is left for the next sweep or for that user's own
-- next call, which releases lazily), then deletes settled and released reservations older than
-- p_keep_days (at most 10,000 a run). Service context or staff only. Returns
-- {"released": n, "pruned": n}.
CREATE OR REPLACE FUNCTION public.release_expired_quota_reservations(p_keep_days integer DEFAULT 7)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_user bigint;
    v_released integer := 0;
    v_pruned integer;
BEGIN
    IF NOT (auth.is_service() OR auth.is_admin()) THEN
        RAISE EXCEPTION 'only the service context may sweep reservations' USING ERRCODE = '42501';
    END IF;
    IF p_keep_days IS NULL OR p_keep_days < 1 THEN
        RAISE EXCEPTION 'keep days must be at least 1, got %', p_keep_days USING ERRCODE = '22023';
    END IF;
    FOR v_user IN
        SELECT DISTINCT r.user_id FROM public.quota_reservations r
         WHERE r.settled_at IS NULL AND r.released_at IS NULL AND r.expires_at <= now()
         ORDER BY r.user_id
    LOOP
        PERFORM 1 FROM public.user_quotas q WHERE q.user_id = v_user FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            v_released := v_released + public.quota_reservations_release_expired(v_user);
        END IF;
    END LOOP;

    DELETE FROM public.quota_reservations r
     WHERE r.id IN (
           SELECT o.id FROM public.quota_reservations o
            WHERE (o.settled_at IS NOT NULL OR o.released_at IS NOT NULL)
              AND o.expires_at < now() - make_interval(days => p_keep_days)
            LIMIT 10000);
    GET DIAGNOSTICS v_pruned = ROW_COUNT;
    RETURN jsonb_build_object('released', v_released, 'pruned', v_pruned);
END
$$;
REVOKE ALL ON FUNCTION public.release_expired_quota_reservations(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.release_expired_quota_reservations(integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.reset_user_quota",
            sha256="8e30d7e1e87b784ac93799924ba7dd20360d87cd0bbab9f6e2c857f4baad0e54",
            adopted=True,
            sql=r"""-- reset_user_quota(user), second version: as before (billing/sql/0004), but the used counters
-- start again from the holds still open in the current period, not from 0: their settlement
-- subtracts them, which after a reset to 0 would give the user what they had not used.
CREATE OR REPLACE FUNCTION public.reset_user_quota(p_user_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'only staff may reset a quota' USING ERRCODE = '42501';
    END IF;
    PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM public.quota_reservations_release_expired(p_user_id);
    UPDATE public.user_quotas AS q
       SET tokens_used = held.tokens,
           cost_used = held.cost,
           tokens_limit = coalesce((SELECT l.tokens_limit
                                      FROM public.quota_tier_limits(p_user_id) l), q.tokens_limit),
           cost_limit = coalesce((SELECT l.cost_limit
                                    FROM public.quota_tier_limits(p_user_id) l), q.cost_limit),
           updated_at = now()
      FROM (SELECT coalesce(sum(r.tokens), 0) AS tokens, coalesce(sum(r.cost), 0) AS cost
              FROM public.quota_reservations r
              JOIN public.user_quotas cur ON cur.user_id = r.user_id
             WHERE r.user_id = p_user_id AND r.settled_at IS NULL AND r.released_at IS NULL
               AND r.period_start = cur.period_start) AS held
     WHERE q.user_id = p_user_id;
    UPDATE public.usage_alerts AS a
       SET resolved_at = now()
     WHERE a.user_id = p_user_id AND a.resolved_at IS NULL;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.reset_user_quota(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.reset_user_quota(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.resolve_outgrown_alerts",
            sha256="05194b2f31680a266d963923bef1424fd8b105203530a74ce04d49b446bda224",
            adopted=True,
            sql=r"""-- resolve_outgrown_alerts(user): resolve the open alerts of the quota's current period that
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
""",
        ),
        DefineSQL(
            name="public.resume_subscription",
            sha256="4a97c8a475276296a10f0e9fe947f29917f5305c8ddb2e5d2efa73417738dea6",
            adopted=True,
            sql=r"""-- resume_subscription(user): undo a scheduled downgrade or cancellation before it takes effect.
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
""",
        ),
        DefineSQL(
            name="public.roll_quota_forward",
            sha256="8e7fb5b024f3dd84284d9a5ed6b66adc28d41adafb3b036618fcbf7946364c87",
            adopted=True,
            sql=r"""-- roll_quota_forward(user): when the user's quota period has ended (period_end <= now()), move
-- it to the current UTC calendar month: used counters back to 0, limits from the current plan,
-- and the open alerts of earlier periods resolved. Returns true when it rolled, false when the
-- period is still running or the user has no quota. Idempotent and safe under concurrency: the
-- UPDATE re-checks period_end after waiting for a concurrent roller's lock, so exactly one
-- caller rolls. Called by every flow that touches a quota (so a missed monthly job never blocks
-- anyone) and by monthly maintenance.
CREATE OR REPLACE FUNCTION public.roll_quota_forward(p_user_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_period record;
    v_rolled boolean;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    SELECT b.period_start, b.period_end INTO v_period FROM public.quota_period_bounds(now()) b;

    -- The limits are looked up only for a row that actually rolls (scalar subqueries in SET).
    UPDATE public.user_quotas AS q
       SET tokens_limit = coalesce((SELECT l.tokens_limit
                                      FROM public.quota_tier_limits(p_user_id) l), q.tokens_limit),
           cost_limit = coalesce((SELECT l.cost_limit
                                    FROM public.quota_tier_limits(p_user_id) l), q.cost_limit),
           tokens_used = 0,
           cost_used = 0,
           period_start = v_period.period_start,
           period_end = v_period.period_end,
           updated_at = now()
     WHERE q.user_id = p_user_id AND q.period_end <= now();
    v_rolled := FOUND;

    IF v_rolled THEN
        UPDATE public.usage_alerts AS a
           SET resolved_at = now()
         WHERE a.user_id = p_user_id
           AND a.resolved_at IS NULL
           AND a.period_start < v_period.period_start;
    END IF;
    RETURN v_rolled;
END
$$;
REVOKE ALL ON FUNCTION public.roll_quota_forward(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.roll_quota_forward(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.schedule_subscription_change",
            sha256="5615cef5085b1cc6e73da4139fc659a03c671ff5ba73bb14e424d6cb15662b71",
            adopted=True,
            sql=r"""-- schedule_subscription_change(user, tier slug): a downgrade to a cheaper public tier, or a
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
""",
        ),
        DefineSQL(
            name="public.subscription_switch",
            sha256="728f056e996a304b04a6729a11e959a04989d1936acdb7a92caf6dbef95faa43",
            adopted=True,
            sql=r"""-- subscription_switch(...): end the user's current subscription now and start a new active one
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
""",
        ),
    ]
