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
REVOKE ALL ON FUNCTION public.quota_period_bounds(timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.quota_period_bounds(timestamp with time zone) TO witchcraft_app;
