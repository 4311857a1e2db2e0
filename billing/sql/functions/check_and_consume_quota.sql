CREATE OR REPLACE FUNCTION public.check_and_consume_quota(
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
           AND p_tokens <= public.quota_tokens_limit(q) - q.tokens_used
           AND v_cost <= public.quota_cost_limit(q) - q.cost_used
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
                            greatest(public.quota_tokens_limit(v_quota) - v_quota.tokens_used,
                                     0)::bigint,
                            greatest(public.quota_cost_limit(v_quota) - v_quota.cost_used,
                                     0)::numeric,
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
                        greatest(public.quota_tokens_limit(v_quota) - v_quota.tokens_used,
                                 0)::bigint,
                        greatest(public.quota_cost_limit(v_quota) - v_quota.cost_used,
                                 0)::numeric,
                        CASE WHEN p_tokens > public.quota_tokens_limit(v_quota) - v_quota.tokens_used
                             THEN 'tokens_exceeded' ELSE 'cost_exceeded' END,
                        NULL::bigint, NULL::timestamptz;
END
$$;
REVOKE ALL ON FUNCTION public.check_and_consume_quota(bigint, bigint, numeric, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.check_and_consume_quota(
    bigint, bigint, numeric, integer) TO witchcraft_app;
