-- Reservations are rows (issue 15, DESIGN.md "Quotas"): what check_and_consume_quota reserved is
-- the server's record, never the client's word.
--
-- * check_and_consume_quota, fourth version: a granted reservation is a quota_reservations row;
--   its id and expiry are answered. Before reserving, the user's expired holds are given back
--   (lazily: a stopped worker never strands quota).
-- * record_ai_usage and record_ai_usage_batch (usage/sql/0008_reservations_and_prices.sql) name
--   the reservation and are charged the actual amount minus what it really held, once.
-- * release_expired_quota_reservations(): the worker's sweep (every minute), and the pruning of
--   settled and released rows after a week.
-- * reset_user_quota, second version: a staff reset forgives what was used, not the holds still
--   open (their settlement subtracts them again).
-- * auth.may_record_for(user): who may reserve and record for a user (README "Who may record
--   usage"): the service context, or the user themself in a request whose credential may record
--   (app.may_record, set by witchcraft/rls.py from the credential's scopes and the deployment's
--   setting). An admin's own credential is not enough: staff do not report token counts.
--
-- Lock order as everywhere (billing/sql/0002): the user_quotas row first, then the reservations.

ALTER TABLE public.quota_reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.quota_reservations FORCE ROW LEVEL SECURITY;
GRANT SELECT ON public.quota_reservations TO witchcraft_app;
CREATE POLICY quota_reservations_select_own ON public.quota_reservations FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
CREATE POLICY quota_reservations_select_admin ON public.quota_reservations FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));


CREATE OR REPLACE FUNCTION auth.may_record_for(p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT auth.is_service()
        OR (p_user_id IS NOT NULL AND auth.user_id() IS NOT DISTINCT FROM p_user_id
            AND coalesce(nullif(current_setting('app.may_record', true), '')::boolean, false))
$$;
REVOKE ALL ON FUNCTION auth.may_record_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.may_record_for(bigint) TO witchcraft_app;

CREATE OR REPLACE FUNCTION auth.require_record_for(p_user_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    IF NOT auth.may_record_for(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to reserve or record usage for user %', p_user_id
            USING ERRCODE = '42501';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION auth.require_record_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.require_record_for(bigint) TO witchcraft_app;


-- quota_has_expired_holds(user): has the user a reservation that expired unsettled and still
-- holds quota? One probe of quota_reservations_open. A plain SQL expression (no SET clause: it
-- is inlined into its callers, which pin their search_path; only its owner may call it), so
-- the hot paths pay for the release below only when there is something to give back.
CREATE OR REPLACE FUNCTION public.quota_has_expired_holds(p_user_id bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.quota_reservations r
         WHERE r.user_id = p_user_id AND r.settled_at IS NULL AND r.released_at IS NULL
           AND r.expires_at <= now())
$$;
REVOKE ALL ON FUNCTION public.quota_has_expired_holds(bigint) FROM PUBLIC;


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


-- release_expired_quota_reservations(): the worker's sweep, every minute. Gives back the holds
-- of every expired unsettled reservation, user by user in user order (the quota row lock first;
-- a user whose quota row is locked right now is left for the next sweep or for that user's own
-- next call, which releases lazily), then deletes settled and released reservations older than
-- p_keep_days (at most 10,000 a run). Service context or staff only. Returns
-- {"released": n, "pruned": n}.
CREATE OR REPLACE FUNCTION public.release_expired_quota_reservations(p_keep_days integer DEFAULT 7)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_user bigint;
    v_released integer := 0;
    v_pruned integer;
BEGIN
    IF NOT (auth.is_service() OR auth.is_admin()) THEN
        RAISE EXCEPTION 'only the service context may sweep reservations' USING ERRCODE = '42501';
    END IF;
    IF p_keep_days IS NULL OR p_keep_days < 1 THEN
        RAISE EXCEPTION 'keep days must be at least 1, got %', p_keep_days USING ERRCODE = '22023';
    END IF;
    FOR v_user IN
        SELECT DISTINCT r.user_id FROM public.quota_reservations r
         WHERE r.settled_at IS NULL AND r.released_at IS NULL AND r.expires_at <= now()
         ORDER BY r.user_id
    LOOP
        PERFORM 1 FROM public.user_quotas q WHERE q.user_id = v_user FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            v_released := v_released + public.quota_reservations_release_expired(v_user);
        END IF;
    END LOOP;

    DELETE FROM public.quota_reservations r
     WHERE r.id IN (
           SELECT o.id FROM public.quota_reservations o
            WHERE (o.settled_at IS NOT NULL OR o.released_at IS NOT NULL)
              AND o.expires_at < now() - make_interval(days => p_keep_days)
            LIMIT 10000);
    GET DIAGNOSTICS v_pruned = ROW_COUNT;
    RETURN jsonb_build_object('released', v_released, 'pruned', v_pruned);
END
$$;
REVOKE ALL ON FUNCTION public.release_expired_quota_reservations(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.release_expired_quota_reservations(integer) TO witchcraft_app;


-- check_and_consume_quota(user, tokens, cost, ttl seconds), fourth version: reserve an estimate
-- before an AI call and record the reservation.
--   allowed true   the estimate was added to tokens_used / cost_used and a quota_reservations
--                  row holds it until it is settled by the usage record that names it, or until
--                  it expires (p_ttl_seconds, 1 s to 1 day) and its hold is given back.
--   allowed false  nothing changed; reason 'no_quota', 'tokens_exceeded' (checked first) or
--                  'cost_exceeded'; reservation_id and expires_at NULL.
-- The fast path is one conditional UPDATE, as before, which also requires that the user has no
-- expired hold left to give back. When it reserves nothing, the quota row is locked, expired
-- holds are released and an ended period is rolled forward; if either changed anything the
-- reservation is tried once more, before the refusal is explained.
-- Only a caller who may record for the user (auth.may_record_for) may reserve.
DROP FUNCTION IF EXISTS public.check_and_consume_quota(bigint, bigint, numeric);
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
           AND p_tokens <= q.tokens_limit - q.tokens_used
           AND v_cost <= q.cost_limit - q.cost_used
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
                            greatest(v_quota.tokens_limit - v_quota.tokens_used, 0)::bigint,
                            greatest(v_quota.cost_limit - v_quota.cost_used, 0)::numeric,
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
                        greatest(v_quota.tokens_limit - v_quota.tokens_used, 0)::bigint,
                        greatest(v_quota.cost_limit - v_quota.cost_used, 0)::numeric,
                        CASE WHEN p_tokens > v_quota.tokens_limit - v_quota.tokens_used
                             THEN 'tokens_exceeded' ELSE 'cost_exceeded' END,
                        NULL::bigint, NULL::timestamptz;
END
$$;
REVOKE ALL ON FUNCTION public.check_and_consume_quota(bigint, bigint, numeric, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.check_and_consume_quota(bigint, bigint, numeric, integer)
    TO witchcraft_app;


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
