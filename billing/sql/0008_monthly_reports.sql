-- Monthly reports (issue 17): the plan a user is counted under is the one in force for most of
-- the month, from the user_subscriptions history (no longer the plan after the month-end
-- changes), each plan's users include those who used nothing, one 'total' row per month says the
-- report exists, and the report of any complete month is made by one function,
-- generate_monthly_report(month), which monthly_maintenance() and `manage.py monthly_report` call.

-- usage_monthly_reports, second version (billing/sql/0003 for the rest) -------------------------
--   dimension 'total', key 'all': the whole month (every report has it, zeros included)
--   subscribers: the month's users on the plan ('tier' rows) or in all ('total'): those whose
--                plan covered part of the month, and those who used anything in it, with or
--                without usage; 0 on 'provider' and 'model' rows. users stays the number of
--                users with usage.
ALTER TABLE public.usage_monthly_reports
    ADD COLUMN subscribers bigint NOT NULL DEFAULT 0,
    DROP CONSTRAINT usage_monthly_reports_dimension_valid,
    ADD CONSTRAINT usage_monthly_reports_dimension_valid CHECK (
        dimension IN ('total', 'tier', 'provider', 'model')),
    DROP CONSTRAINT usage_monthly_reports_counts_non_negative,
    ADD CONSTRAINT usage_monthly_reports_counts_non_negative CHECK (
        requests >= 0 AND tokens >= 0 AND cost >= 0 AND users >= 0 AND subscribers >= 0);

-- Reports stored before: their 'total' row, from their tier rows (every user with usage is on
-- exactly one plan). Their tier split and subscribers stay as they were until the month is
-- generated again (`manage.py monthly_report --month YYYY-MM --regenerate`).
INSERT INTO public.usage_monthly_reports AS r
       (year, month, dimension, key, requests, tokens, cost, users, generated_at)
SELECT t.year, t.month, 'total', 'all', sum(t.requests), sum(t.tokens), sum(t.cost),
       sum(t.users), max(t.generated_at)
  FROM public.usage_monthly_reports t
 WHERE t.dimension = 'tier'
 GROUP BY t.year, t.month
ON CONFLICT (year, month, dimension, key) DO NOTHING;

-- generate_monthly_report(month): store the report of the calendar month (UTC) that starts on
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

-- monthly_maintenance(), third version (billing/sql/0005 for the second, billing/sql/0003 for
-- the rest): the report step is generate_monthly_report() of the previous month. Every other
-- step is unchanged.
CREATE OR REPLACE FUNCTION public.monthly_maintenance() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := now();
    v_month record;
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

    -- 3. The previous calendar month's report (generate_monthly_report, above).
    v_report_end := (v_month.period_start AT TIME ZONE 'UTC')::date;
    v_report_rows := public.generate_monthly_report((v_report_end - interval '1 month')::date);

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
