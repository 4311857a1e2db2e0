-- Monthly maintenance (the seed's "Maintenance Tasks", run on the 1st at midnight UTC by
-- `manage.py monthly_maintenance`): subscription statuses moved on, quotas reset, and the
-- previous month's usage report stored.
--
-- SECURITY DEFINER (its owner bypasses RLS) with a pinned search_path and schema-qualified
-- names; runs only in the service context (a command or job, or an operator session that never
-- switched to witchcraft_app).

-- usage_monthly_reports ------------------------------------------------------------------------
-- One row per calendar month (UTC), dimension and key: requests, tokens, cost and distinct users
-- of that month, per plan ('tier': the tier slug), per provider ('provider': the provider slug)
-- and per model ('model': 'provider-slug/model-name'). Written by monthly_maintenance() only.
-- No foreign keys: a report outlives the catalog rows it names.
CREATE TABLE public.usage_monthly_reports (
    year smallint NOT NULL,
    month smallint NOT NULL,
    dimension text NOT NULL,
    key text NOT NULL,
    requests bigint NOT NULL DEFAULT 0,
    tokens bigint NOT NULL DEFAULT 0,
    cost numeric(14, 6) NOT NULL DEFAULT 0,
    users bigint NOT NULL DEFAULT 0,
    generated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_monthly_reports_pkey PRIMARY KEY (year, month, dimension, key),
    CONSTRAINT usage_monthly_reports_dimension_valid CHECK (
        dimension IN ('tier', 'provider', 'model')),
    CONSTRAINT usage_monthly_reports_month_valid CHECK (month BETWEEN 1 AND 12),
    CONSTRAINT usage_monthly_reports_year_valid CHECK (year BETWEEN 2000 AND 9999),
    CONSTRAINT usage_monthly_reports_key_not_empty CHECK (key <> ''),
    CONSTRAINT usage_monthly_reports_counts_non_negative CHECK (
        requests >= 0 AND tokens >= 0 AND cost >= 0 AND users >= 0)
);

-- Admins read the reports; only monthly_maintenance() (running as owner) writes them.
ALTER TABLE public.usage_monthly_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.usage_monthly_reports FORCE ROW LEVEL SECURITY;
REVOKE ALL ON public.usage_monthly_reports FROM PUBLIC;
GRANT SELECT ON public.usage_monthly_reports TO witchcraft_app;
CREATE POLICY usage_monthly_reports_select_admin ON public.usage_monthly_reports FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

-- monthly_maintenance(): the seed's monthly job, in one transaction. Returns what it did:
--   subscriptions_canceled  current subscriptions set to cancel at period end whose period has
--                           ended: now 'canceled', and the user is on a new free subscription
--   subscriptions_expired   'past_due' subscriptions still unpaid 7 days after their period
--                           ended: now 'expired', and the user is on a new free subscription
--   subscriptions_renewed   'active' / 'trialing' subscriptions whose period ended, not
--                           canceling: moved on by whole billing cycles until the period covers
--                           now (a trial that ran out becomes 'active')
--   quotas_rolled           quotas whose period ended, rolled to the current UTC month with the
--                           limits of the plan the user is on after the step above
--   alerts_resolved         open alerts of the ended periods, resolved by the roll
--   report_rows             rows of the previous month's usage_monthly_reports inserted,
--                           changed or removed (0 when the stored report was already right)
-- Idempotent: a second run finds nothing to do and reports zeros.
--
-- Users are handled one by one in user_id order, each taking the user's quota row first and
-- then the subscription, the lock order of every quota flow (billing/sql/0002). The new free
-- subscription's period is the calendar month it starts in, like the quota periods.
-- A subscription's tier in the report is the user's current one when the report is made (after
-- the status changes above), else free: the plan history is not kept per month.
CREATE FUNCTION public.monthly_maintenance() RETURNS jsonb
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
                -- canceled_at keeps the moment the user asked to cancel, when known.
                UPDATE public.user_subscriptions s
                   SET status = CASE WHEN v_sub.cancel_at_period_end THEN 'canceled'
                                     ELSE 'expired' END,
                       canceled_at = CASE WHEN v_sub.cancel_at_period_end
                                          THEN coalesce(s.canceled_at, v_now)
                                          ELSE s.canceled_at END,
                       updated_at = v_now
                 WHERE s.id = v_sub.id;
                INSERT INTO public.user_subscriptions
                       (user_id, tier_id, status, billing_cycle, current_period_start,
                        current_period_end, cancel_at_period_end, canceled_at, payment_provider,
                        provider_customer_id, provider_subscription_id, created_at, updated_at)
                VALUES (v_user, v_free_tier, 'active', 'monthly', v_month.period_start,
                        v_month.period_end, false, NULL, '', '', '', v_now, v_now);
                IF v_sub.cancel_at_period_end THEN
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
        'subscriptions_expired', v_expired,
        'subscriptions_renewed', v_renewed,
        'report_rows', v_report_rows);
END
$$;
REVOKE ALL ON FUNCTION public.monthly_maintenance() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monthly_maintenance() TO witchcraft_app;
