-- raise_quota_limit(user, tokens limit, cost limit, until): a staff member raises the user's
-- token and / or cost limit (NULL: that one not raised) until a moment. Stored on the quota row
-- (raised_tokens_limit, raised_cost_limit, raised_until), where check_and_consume_quota and
-- get_remaining_quota read it through quota_tokens_limit / quota_cost_limit: honoured until
-- `until`, the plan's limits afterwards, with no job to run. A new raise replaces the one
-- running. Each raise is a row of quota_limit_raises (who, when, effective limits before and
-- after, until) and a quota_limit_raised audit row (the staff member as actor). Open alerts the
-- new limits no longer justify are resolved.
-- Refused (nothing written):
--   42501  the caller is not staff holding billing.change_userquota (nor the service context)
--   22023  neither limit given; a limit not above the plan's or above the maximum (tokens
--          10^15, cost 999999.999999 = numeric(12,6)); `until` not in the future or after the
--          end of the next quota period (the UTC month after this one)
--   WC404  the user has no quota
-- Returns the id of the quota_limit_raises row.
CREATE OR REPLACE FUNCTION public.raise_quota_limit(
    p_user_id bigint, p_tokens_limit bigint, p_cost_limit numeric, p_until timestamptz
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_quota public.user_quotas%ROWTYPE;
    v_cost numeric := round(p_cost_limit, 6);
    v_max_until timestamptz;
    v_id bigint;
BEGIN
    IF NOT (auth.is_service() OR auth.has_perm('billing', 'change_userquota')) THEN
        RAISE EXCEPTION 'only staff allowed to change quotas may raise a limit'
            USING ERRCODE = '42501';
    END IF;
    IF p_tokens_limit IS NULL AND p_cost_limit IS NULL THEN
        RAISE EXCEPTION 'Raise the token limit, the cost limit or both.' USING ERRCODE = '22023';
    END IF;
    IF p_until IS NULL OR p_until <= now() OR p_until = 'infinity'::timestamptz THEN
        RAISE EXCEPTION 'The end of a raise must be in the future.' USING ERRCODE = '22023';
    END IF;
    SELECT b.period_end + interval '1 month' INTO v_max_until
      FROM public.quota_period_bounds(now()) b;
    IF p_until > v_max_until THEN
        RAISE EXCEPTION 'A raise ends by the end of the next quota period (% UTC).',
            to_char(v_max_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') USING ERRCODE = '22023';
    END IF;
    IF p_tokens_limit IS NOT NULL AND (p_tokens_limit < 0 OR p_tokens_limit > 1000000000000000)
    THEN
        RAISE EXCEPTION 'A token limit is between 0 and 10^15.' USING ERRCODE = '22023';
    END IF;
    IF p_cost_limit IS NOT NULL AND (v_cost < 0 OR v_cost > 999999.999999) THEN
        RAISE EXCEPTION 'A cost limit is between $0 and $999,999.999999.' USING ERRCODE = '22023';
    END IF;

    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'The user has no quota.' USING ERRCODE = 'WC404';
    END IF;
    IF p_tokens_limit IS NOT NULL AND p_tokens_limit <= v_quota.tokens_limit THEN
        RAISE EXCEPTION 'The raised token limit must be above the plan''s (%).',
            v_quota.tokens_limit USING ERRCODE = '22023';
    END IF;
    IF p_cost_limit IS NOT NULL AND v_cost <= v_quota.cost_limit THEN
        RAISE EXCEPTION 'The raised cost limit must be above the plan''s ($%).',
            v_quota.cost_limit USING ERRCODE = '22023';
    END IF;

    INSERT INTO public.quota_limit_raises AS r
           (user_id, raised_by_id, created_at, tokens_limit_from, tokens_limit_to,
            cost_limit_from, cost_limit_to, raised_until)
    VALUES (p_user_id, auth.user_id(), now(), public.quota_tokens_limit(v_quota), p_tokens_limit,
            public.quota_cost_limit(v_quota), v_cost, p_until)
    RETURNING r.id INTO v_id;
    UPDATE public.user_quotas AS q
       SET raised_tokens_limit = p_tokens_limit,
           raised_cost_limit = v_cost,
           raised_until = p_until,
           updated_at = now()
     WHERE q.user_id = p_user_id;
    PERFORM public.write_audit_log(
        p_event_type => 'quota_limit_raised', p_user_id => p_user_id,
        p_details => jsonb_build_object(
            'tokens_from', public.quota_tokens_limit(v_quota), 'tokens_to', p_tokens_limit,
            'cost_from', public.quota_cost_limit(v_quota), 'cost_to', v_cost,
            'until', p_until),
        p_target_type => 'user_quota', p_target_id => p_user_id::text);
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION public.raise_quota_limit(bigint, bigint, numeric, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.raise_quota_limit(bigint, bigint, numeric, timestamptz)
    TO witchcraft_app;
