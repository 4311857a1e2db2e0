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
