-- quota_reservations_release_expired(user): give back the holds of the user's reservations that
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
