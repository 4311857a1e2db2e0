-- Quota flows on their fast path (bench/README.md, issue 10): the same results as before with
-- fewer statements per call.
--
-- * The roll-forward (roll_quota_forward) only when the quota's period has ended, which the
--   quota row itself says: most calls no longer run its UPDATE.
-- * The alerts (raise_quota_alerts) only when the quota has reached 80 % of a limit, the lowest
--   threshold: below it raise_quota_alerts can create or re-open nothing (quota_may_alert is
--   exactly its WHERE clause at the lowest threshold).

-- quota_may_alert(quota): has the quota reached 80 % of its token or of its cost limit (a limit
-- of 0 never alerts)? A plain SQL expression (no SET clause: it is inlined into its callers,
-- which pin their search_path; only its owner may call it directly).
CREATE OR REPLACE FUNCTION public.quota_may_alert(p_quota public.user_quotas)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (($1).tokens_limit > 0 AND ($1).tokens_used::numeric * 100 >= ($1).tokens_limit::numeric * 80)
        OR (($1).cost_limit > 0 AND ($1).cost_used * 100 >= ($1).cost_limit * 80)
$$;
REVOKE ALL ON FUNCTION public.quota_may_alert(public.user_quotas) FROM PUBLIC;

-- check_and_consume_quota, third version: as before (billing/sql/0002_quota_functions.sql).
-- The reservation's UPDATE runs first for a quota whose period is running; only when it
-- reserves nothing is the quota rolled forward (if its period ended) and the reservation tried
-- once more, before the refusal is explained.
CREATE OR REPLACE FUNCTION public.check_and_consume_quota(
    p_user_id bigint, p_tokens bigint, p_cost numeric
) RETURNS TABLE(allowed boolean, tokens_remaining bigint, cost_remaining numeric, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_cost numeric := round(p_cost, 6);
    v_quota public.user_quotas%ROWTYPE;
    v_reserved boolean;
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

    FOR attempt IN 1..2 LOOP
        UPDATE public.user_quotas AS q
           SET tokens_used = q.tokens_used + p_tokens,
               cost_used = q.cost_used + v_cost,
               updated_at = now()
         WHERE q.user_id = p_user_id
           AND q.period_end > now()
           AND p_tokens <= q.tokens_limit - q.tokens_used
           AND v_cost <= q.cost_limit - q.cost_used
        RETURNING q.* INTO v_quota;
        v_reserved := FOUND;
        EXIT WHEN v_reserved OR attempt = 2 OR NOT public.roll_quota_forward(p_user_id);
    END LOOP;

    IF v_reserved THEN
        IF public.quota_may_alert(v_quota) THEN
            PERFORM public.raise_quota_alerts(p_user_id);
        END IF;
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
