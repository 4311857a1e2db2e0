-- get_remaining_quota(user): limits, used, remaining (never negative) and percent used (rounded
-- to 2 places; NULL when the limit is 0) for tokens and cost, with the period. No row when the
-- user has no quota.
-- A read, never a write (STABLE, callable from any page): when the stored period has ended it
-- reports what roll_quota_forward would make of it, i.e. the current UTC month with nothing
-- used and the current plan's limits. The row itself rolls on the next consumption, usage record
-- or monthly maintenance. The limits are those in force now: a staff raise until its end
-- (quota_tokens_limit / quota_cost_limit), the plan's otherwise.
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
        SELECT public.quota_tokens_limit(q) AS t_limit, q.tokens_used AS t_used,
               public.quota_cost_limit(q) AS c_limit, q.cost_used AS c_used,
               q.period_start AS p_start, q.period_end AS p_end,
               CASE WHEN q.raised_until > now() THEN q.raised_tokens_limit END AS t_raised,
               CASE WHEN q.raised_until > now() THEN q.raised_cost_limit END AS c_raised
          FROM public.user_quotas q
         WHERE q.user_id = p_user_id
    ), effective AS (
        SELECT s.t_limit, s.t_used, s.c_limit, s.c_used, s.p_start, s.p_end
          FROM stored s
         WHERE s.p_end > now()
        UNION ALL
        SELECT greatest(coalesce(l.tokens_limit, s.t_limit), s.t_raised), 0::bigint,
               greatest(coalesce(l.cost_limit, s.c_limit), s.c_raised),
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
