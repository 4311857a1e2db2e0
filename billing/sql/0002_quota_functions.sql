-- Quotas: the reservation before an AI call, the monthly roll-forward, the 80 % / 100 % alerts
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
REVOKE ALL ON FUNCTION public.quota_period_bounds(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.quota_period_bounds(timestamptz) TO witchcraft_app;

-- quota_tier_limits(user): the monthly limits of the user's current plan: the subscription in
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

-- roll_quota_forward(user): when the user's quota period has ended (period_end <= now()), move
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

-- raise_quota_alerts(user): create the alerts the quota's current period has reached and not
-- had yet: 'warning' at >= 80 % and 'exceeded' at >= 100 % of the token limit and of the cost
-- limit (a limit of 0 raises nothing). Once per (user, type, metric, period_start): the unique
-- key usage_alerts_once plus ON CONFLICT DO NOTHING make repeated and concurrent calls harmless.
-- "Exceeded" fires on reaching the limit: a reservation can use a quota up exactly, and then the
-- next request is refused. Returns how many alerts it created.
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
    ON CONFLICT (user_id, alert_type, metric, period_start) DO NOTHING;
    GET DIAGNOSTICS v_created = ROW_COUNT;
    RETURN v_created;
END
$$;
REVOKE ALL ON FUNCTION public.raise_quota_alerts(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.raise_quota_alerts(bigint) TO witchcraft_app;

-- check_and_consume_quota(user, tokens, cost): reserve an estimate before an AI call.
--   allowed true   the estimate was added to tokens_used / cost_used (reason NULL); the alerts
--                  the new total reaches are raised.
--   allowed false  nothing changed; reason 'no_quota', 'tokens_exceeded' (checked first) or
--                  'cost_exceeded'.
-- tokens_remaining / cost_remaining are what is left after the call (never negative).
-- One conditional UPDATE does the check and the reservation, so concurrent callers can never
-- overspend under READ COMMITTED: a waiting UPDATE re-evaluates its WHERE on the committed row.
-- (Written as p_tokens <= limit - used, the same test as used + p_tokens <= limit without
-- overflowing on absurd estimates.) Commit the reservation before the AI call: a transaction
-- held open across it would hold the quota row lock for the whole call. The estimate is rounded
-- to the micro-dollar, as the stored amounts are. Negative or NULL estimates raise 22023.
CREATE OR REPLACE FUNCTION public.check_and_consume_quota(
    p_user_id bigint, p_tokens bigint, p_cost numeric
) RETURNS TABLE(allowed boolean, tokens_remaining bigint, cost_remaining numeric, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_cost numeric := round(p_cost, 6);
    v_quota public.user_quotas%ROWTYPE;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    IF p_tokens IS NULL OR p_tokens < 0 THEN
        RAISE EXCEPTION 'tokens must be a non-negative number, got %', p_tokens
            USING ERRCODE = '22023';
    END IF;
    IF p_cost IS NULL OR p_cost < 0 THEN
        RAISE EXCEPTION 'cost must be a non-negative amount, got %', p_cost
            USING ERRCODE = '22023';
    END IF;

    PERFORM public.roll_quota_forward(p_user_id);

    UPDATE public.user_quotas AS q
       SET tokens_used = q.tokens_used + p_tokens,
           cost_used = q.cost_used + v_cost,
           updated_at = now()
     WHERE q.user_id = p_user_id
       AND p_tokens <= q.tokens_limit - q.tokens_used
       AND v_cost <= q.cost_limit - q.cost_used
    RETURNING q.* INTO v_quota;

    IF FOUND THEN
        PERFORM public.raise_quota_alerts(p_user_id);
        RETURN QUERY SELECT true,
                            greatest(v_quota.tokens_limit - v_quota.tokens_used, 0)::bigint,
                            greatest(v_quota.cost_limit - v_quota.cost_used, 0)::numeric,
                            NULL::text;
        RETURN;
    END IF;

    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 0::bigint, 0::numeric, 'no_quota'::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT false,
                        greatest(v_quota.tokens_limit - v_quota.tokens_used, 0)::bigint,
                        greatest(v_quota.cost_limit - v_quota.cost_used, 0)::numeric,
                        CASE WHEN p_tokens > v_quota.tokens_limit - v_quota.tokens_used
                             THEN 'tokens_exceeded' ELSE 'cost_exceeded' END;
END
$$;
REVOKE ALL ON FUNCTION public.check_and_consume_quota(bigint, bigint, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.check_and_consume_quota(bigint, bigint, numeric)
    TO witchcraft_app;

-- get_remaining_quota(user): limits, used, remaining (never negative) and percent used (rounded
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
