-- reset_user_quota(user), second version: as before (billing/sql/0004), but the used counters
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
