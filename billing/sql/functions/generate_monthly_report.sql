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
