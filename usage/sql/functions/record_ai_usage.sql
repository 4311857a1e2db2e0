-- record_ai_usage: one AI request of a user, recorded in one transaction (the seed's AI request
-- flow): the usage row priced from the catalog's prices of its model (copied onto the row),
-- the daily and monthly roll-ups, the quota booked (the actual amount minus what the named
-- reservation of check_and_consume_quota held, which it settles) and quota alerts raised.
-- * Only a caller allowed to record for the user (auth.may_record_for) may call it; only the
--   service context may place the row in time (p_created_at) or give its cost (p_cost: what a
--   provider really billed, for imported history).
-- * A retry of a recorded request_id returns the first row's id and changes nothing.
-- * A request that did not succeed may say why: p_error_code (the provider's code) and
--   p_error_message (its message, at most 1,000 characters, credentials it echoes redacted by
--   ai_usage_redact); a successful request has no error message.
-- * Refusals: 22023 for bad input, WC404 / WC409 for a reservation that is not the user's, or
--   was settled or has expired (witchcraft/db_errors.py answers them); nothing is written.
-- * p_access_token_id names the API token that sent the request (the caller's bearer token,
--   set by the server, never by a client); it must be a token of p_user_id, or the call is
--   refused (42501) and nothing is written.
-- * Statements run with generic plans (plan_cache_mode): with custom plans the plan cache
--   planned the statements again on nearly every call (bench/README.md).
CREATE OR REPLACE FUNCTION public.record_ai_usage(
    p_user_id bigint,
    p_provider_id integer,
    p_model_id integer,
    p_input_tokens integer,
    p_output_tokens integer,
    p_request_id text DEFAULT NULL,
    p_cached_input_tokens integer DEFAULT 0,
    p_reasoning_tokens integer DEFAULT 0,
    p_latency_ms integer DEFAULT NULL,
    p_time_to_first_token_ms integer DEFAULT NULL,
    p_status text DEFAULT 'success',
    p_error_code text DEFAULT NULL,
    p_agent_session_id bigint DEFAULT NULL,
    p_agent_message_id bigint DEFAULT NULL,
    p_reservation_id bigint DEFAULT NULL,
    p_metadata jsonb DEFAULT '{}',
    p_created_at timestamptz DEFAULT NULL,
    p_cost numeric DEFAULT NULL,
    p_error_message text DEFAULT NULL,
    p_access_token_id bigint DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_model public.ai_models%ROWTYPE;
    v_user_known boolean;
    v_available boolean;
    v_request_id text := nullif(p_request_id, '');
    v_cached integer := coalesce(p_cached_input_tokens, 0);
    v_reasoning integer := coalesce(p_reasoning_tokens, 0);
    v_status text := coalesce(p_status, 'success');
    v_error_code text := coalesce(p_error_code, '');
    v_error_message text := coalesce(p_error_message, '');
    v_reservation public.quota_reservations%ROWTYPE;
    v_held_tokens bigint := 0;
    v_held_cost numeric := 0;
    v_metadata jsonb := coalesce(p_metadata, '{}');
    v_session_id bigint := p_agent_session_id;
    v_owner bigint;
    v_message_session bigint;
    v_created_at timestamptz;
    v_usage_id bigint;
    v_total bigint;
    v_cost numeric;
    v_success integer;
    v_latency_count integer;
    v_quota public.user_quotas%ROWTYPE;
    v_in_period boolean;
BEGIN
    PERFORM auth.require_record_for(p_user_id);
    IF p_created_at IS NOT NULL AND NOT auth.is_service() THEN
        RAISE EXCEPTION 'only the service context may set p_created_at' USING ERRCODE = '42501';
    END IF;
    IF p_cost IS NOT NULL AND NOT auth.is_service() THEN
        RAISE EXCEPTION 'only the service context may set p_cost: the catalog prices requests'
            USING ERRCODE = '42501';
    END IF;
    IF p_cost < 0 THEN
        RAISE EXCEPTION 'cost must be non-negative, got %', p_cost USING ERRCODE = '22023';
    END IF;
    v_created_at := coalesce(p_created_at, now());
    -- One primary-key lookup, only for calls a token sent.
    IF p_access_token_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM public.access_tokens t
         WHERE t.id = p_access_token_id AND t.user_id = p_user_id
    ) THEN
        RAISE EXCEPTION 'access token % is not a token of user %', p_access_token_id, p_user_id
            USING ERRCODE = '42501';
    END IF;

    -- 1. Validation: nothing is written before all of it passed.
    -- The user, the model and its provider in one statement.
    SELECT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_user_id), m.provider_id,
           m.input_price_per_million, m.output_price_per_million,
           m.cached_input_price_per_million, m.is_active AND pr.is_active
      INTO v_user_known, v_model.provider_id, v_model.input_price_per_million,
           v_model.output_price_per_million, v_model.cached_input_price_per_million,
           v_available
      FROM (VALUES (1)) AS one(x)
      LEFT JOIN public.ai_models m ON m.id = p_model_id
      LEFT JOIN public.ai_providers pr ON pr.id = m.provider_id;
    IF NOT v_user_known THEN
        RAISE EXCEPTION 'unknown user %', p_user_id USING ERRCODE = '22023';
    END IF;
    IF v_model.provider_id IS NULL OR v_model.provider_id IS DISTINCT FROM p_provider_id THEN
        RAISE EXCEPTION 'model % is not a model of provider %', p_model_id, p_provider_id
            USING ERRCODE = '22023';
    END IF;
    -- Only what the catalog offers now (the batch function refuses the same way).
    IF NOT v_available THEN
        RAISE EXCEPTION 'model % (or its provider) is not active', p_model_id
            USING ERRCODE = '22023';
    END IF;
    IF p_input_tokens IS NULL OR p_input_tokens < 0 OR p_output_tokens IS NULL
       OR p_output_tokens < 0 OR v_cached < 0 OR v_reasoning < 0 THEN
        RAISE EXCEPTION 'token counts must be non-negative numbers' USING ERRCODE = '22023';
    END IF;
    IF v_cached > p_input_tokens THEN
        RAISE EXCEPTION 'cached input tokens (%) cannot exceed input tokens (%)',
            v_cached, p_input_tokens USING ERRCODE = '22023';
    END IF;
    IF v_reasoning > p_output_tokens THEN
        RAISE EXCEPTION 'reasoning tokens (%) cannot exceed output tokens (%)',
            v_reasoning, p_output_tokens USING ERRCODE = '22023';
    END IF;
    IF v_status NOT IN ('success', 'error', 'timeout', 'cancelled', 'rejected') THEN
        RAISE EXCEPTION 'status % is not one of success, error, timeout, cancelled, rejected',
            v_status USING ERRCODE = '22023';
    END IF;
    IF p_reservation_id <= 0 THEN
        RAISE EXCEPTION 'reservation_id must be a positive whole number' USING ERRCODE = '22023';
    END IF;
    IF p_latency_ms < 0 OR p_time_to_first_token_ms < 0 THEN
        RAISE EXCEPTION 'latencies must be non-negative' USING ERRCODE = '22023';
    END IF;
    IF length(v_request_id) > 100 THEN
        RAISE EXCEPTION 'request id is longer than 100 characters' USING ERRCODE = '22023';
    END IF;
    IF length(v_error_code) > 100 THEN
        RAISE EXCEPTION 'error code is longer than 100 characters' USING ERRCODE = '22023';
    END IF;
    IF length(v_error_message) > 1000 THEN
        RAISE EXCEPTION 'error message is longer than 1000 characters' USING ERRCODE = '22023';
    END IF;
    IF v_error_message <> '' AND v_status = 'success' THEN
        RAISE EXCEPTION 'an error message is only for a request that did not succeed'
            USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(v_metadata) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF p_agent_message_id IS NOT NULL THEN
        SELECT am.user_id, am.session_id INTO v_owner, v_message_session
          FROM public.agent_messages am WHERE am.id = p_agent_message_id;
        IF v_owner IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION 'agent message % is not a message of user %', p_agent_message_id,
                p_user_id USING ERRCODE = '22023';
        END IF;
        IF v_session_id IS NOT NULL AND v_session_id <> v_message_session THEN
            RAISE EXCEPTION 'agent message % is not a message of agent session %',
                p_agent_message_id, v_session_id USING ERRCODE = '22023';
        END IF;
        v_session_id := v_message_session;
    END IF;
    IF v_session_id IS NOT NULL THEN
        SELECT s.user_id INTO v_owner FROM public.agent_sessions s WHERE s.id = v_session_id;
        IF v_owner IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION 'agent session % is not a session of user %', v_session_id,
                p_user_id USING ERRCODE = '22023';
        END IF;
    END IF;
    v_request_id := coalesce(v_request_id, gen_random_uuid()::text);

    -- 2. The quota row first (rolled forward if its period ended), and the user's expired
    -- holds given back.
    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    IF FOUND THEN
        IF v_quota.period_end <= now() THEN
            PERFORM public.roll_quota_forward(p_user_id);
            SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id;
        END IF;
        IF public.quota_has_expired_holds(p_user_id) THEN
            PERFORM public.quota_reservations_release_expired(p_user_id);
        END IF;
    END IF;

    -- 3. The key row: a retry of a recorded request changes nothing.
    IF p_agent_message_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM public.ai_usage_request_keys k
         WHERE k.agent_message_id = p_agent_message_id
           AND NOT (k.user_id = p_user_id AND k.request_id = v_request_id)
    ) THEN
        RAISE EXCEPTION 'agent message % already has a usage record', p_agent_message_id
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.ai_usage_request_keys AS k
           (usage_id, user_id, request_id, agent_message_id, created_at)
    VALUES (nextval('public.ai_usage_requests_id_seq'), p_user_id, v_request_id,
            p_agent_message_id, v_created_at)
    ON CONFLICT (user_id, request_id) DO NOTHING
    RETURNING k.usage_id INTO v_usage_id;
    IF v_usage_id IS NULL THEN
        SELECT k.usage_id INTO v_usage_id
          FROM public.ai_usage_request_keys k
         WHERE k.user_id = p_user_id AND k.request_id = v_request_id;
        RETURN v_usage_id;
    END IF;

    -- 3b. The reservation it names: the user's, open and unexpired, settled now by this record.
    -- Its hold counts only in the quota period it was added to. A refusal raises, so the key
    -- row above is undone with everything else.
    IF p_reservation_id IS NOT NULL THEN
        SELECT r.* INTO v_reservation
          FROM public.quota_reservations r WHERE r.id = p_reservation_id FOR UPDATE;
        IF NOT FOUND OR v_reservation.user_id IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION 'reservation % not found', p_reservation_id
                USING ERRCODE = 'WC404', COLUMN = 'reservation_id';
        ELSIF v_reservation.settled_at IS NOT NULL THEN
            RAISE EXCEPTION 'reservation % was already settled by request_id %', p_reservation_id,
                quote_literal(v_reservation.request_id)
                USING ERRCODE = 'WC409', COLUMN = 'reservation_id';
        ELSIF v_reservation.released_at IS NOT NULL OR v_reservation.expires_at <= now() THEN
            RAISE EXCEPTION 'reservation % expired at % and its hold was given back: record the '
                'usage without reservation_id', p_reservation_id, v_reservation.expires_at
                USING ERRCODE = 'WC409', COLUMN = 'reservation_id';
        END IF;
        UPDATE public.quota_reservations AS r
           SET settled_at = now(), usage_id = v_usage_id, request_id = v_request_id
         WHERE r.id = p_reservation_id;
        IF v_reservation.period_start = v_quota.period_start THEN
            v_held_tokens := v_reservation.tokens;
            v_held_cost := v_reservation.cost;
        END IF;
    END IF;

    -- 4. The usage row, priced from the catalog.
    v_total := p_input_tokens::bigint + p_output_tokens;
    v_cost := round(coalesce(
        p_cost,
        ((p_input_tokens - v_cached)::numeric * v_model.input_price_per_million
         + v_cached::numeric * v_model.cached_input_price_per_million
         + p_output_tokens::numeric * v_model.output_price_per_million) / 1000000), 6);
    v_success := CASE WHEN v_status = 'success' THEN 1 ELSE 0 END;
    v_latency_count := CASE WHEN p_latency_ms IS NULL THEN 0 ELSE 1 END;

    INSERT INTO public.ai_usage_requests
           (id, created_at, user_id, provider_id, model_id, agent_session_id, agent_message_id,
            reservation_id, request_id, input_tokens, output_tokens, cached_input_tokens,
            reasoning_tokens, total_tokens, cost, input_price_per_million,
            output_price_per_million, cached_input_price_per_million, latency_ms,
            time_to_first_token_ms, status, error_code, error_message, metadata,
            access_token_id)
    VALUES (v_usage_id, v_created_at, p_user_id, p_provider_id, p_model_id, v_session_id,
            p_agent_message_id, p_reservation_id, v_request_id, p_input_tokens, p_output_tokens, v_cached,
            v_reasoning, v_total, v_cost, v_model.input_price_per_million,
            v_model.output_price_per_million, v_model.cached_input_price_per_million,
            p_latency_ms, p_time_to_first_token_ms, v_status, v_error_code,
            public.ai_usage_redact(v_error_message), v_metadata, p_access_token_id);

    -- 5. The roll-ups (UTC day and month of created_at).
    INSERT INTO public.ai_usage_daily AS d
           (user_id, usage_date, provider_id, model_id, request_count, success_count,
            error_count, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
            total_tokens, cost, latency_ms_sum, latency_count, updated_at)
    VALUES (p_user_id, (v_created_at AT TIME ZONE 'UTC')::date, p_provider_id, p_model_id, 1,
            v_success, 1 - v_success, p_input_tokens, p_output_tokens, v_cached, v_reasoning,
            v_total, v_cost, coalesce(p_latency_ms, 0), v_latency_count, now())
    ON CONFLICT (user_id, usage_date, provider_id, model_id) DO UPDATE
       SET request_count = d.request_count + excluded.request_count,
           success_count = d.success_count + excluded.success_count,
           error_count = d.error_count + excluded.error_count,
           input_tokens = d.input_tokens + excluded.input_tokens,
           output_tokens = d.output_tokens + excluded.output_tokens,
           cached_input_tokens = d.cached_input_tokens + excluded.cached_input_tokens,
           reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens,
           total_tokens = d.total_tokens + excluded.total_tokens,
           cost = d.cost + excluded.cost,
           latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
           latency_count = d.latency_count + excluded.latency_count,
           updated_at = excluded.updated_at;

    INSERT INTO public.ai_usage_monthly AS mo
           (user_id, year, month, request_count, success_count, error_count, input_tokens,
            output_tokens, cached_input_tokens, reasoning_tokens, total_tokens, cost,
            latency_ms_sum, latency_count, updated_at)
    VALUES (p_user_id, extract(year FROM v_created_at AT TIME ZONE 'UTC')::smallint,
            extract(month FROM v_created_at AT TIME ZONE 'UTC')::smallint, 1, v_success,
            1 - v_success, p_input_tokens, p_output_tokens, v_cached, v_reasoning, v_total,
            v_cost, coalesce(p_latency_ms, 0), v_latency_count, now())
    ON CONFLICT (user_id, year, month) DO UPDATE
       SET request_count = mo.request_count + excluded.request_count,
           success_count = mo.success_count + excluded.success_count,
           error_count = mo.error_count + excluded.error_count,
           input_tokens = mo.input_tokens + excluded.input_tokens,
           output_tokens = mo.output_tokens + excluded.output_tokens,
           cached_input_tokens = mo.cached_input_tokens + excluded.cached_input_tokens,
           reasoning_tokens = mo.reasoning_tokens + excluded.reasoning_tokens,
           total_tokens = mo.total_tokens + excluded.total_tokens,
           cost = mo.cost + excluded.cost,
           latency_ms_sum = mo.latency_ms_sum + excluded.latency_ms_sum,
           latency_count = mo.latency_count + excluded.latency_count,
           updated_at = excluded.updated_at;

    -- A request placed in a day the all-users totals already cover (only the service context
    -- may place one: p_created_at) is added to that day's total (usage/sql/0005).
    IF p_created_at IS NOT NULL THEN
        PERFORM public.usage_daily_totals_add(
            (v_created_at AT TIME ZONE 'UTC')::date, p_provider_id, p_model_id, v_success,
            p_input_tokens, p_output_tokens, v_cached, v_reasoning, v_total, v_cost,
            coalesce(p_latency_ms, 0), v_latency_count);
    END IF;

    -- 6. The quota: actual minus what the reservation held (already locked above).
    IF v_quota.user_id IS NOT NULL THEN
        v_in_period := v_created_at >= v_quota.period_start AND v_created_at < v_quota.period_end;
        UPDATE public.user_quotas AS q
           SET tokens_used = greatest(0, q.tokens_used
                                         + CASE WHEN v_in_period THEN v_total ELSE 0 END
                                         - v_held_tokens),
               cost_used = greatest(0, q.cost_used
                                       + CASE WHEN v_in_period THEN v_cost ELSE 0 END
                                       - v_held_cost),
               updated_at = now()
         WHERE q.user_id = p_user_id
        RETURNING q.* INTO v_quota;
        IF public.quota_may_alert(v_quota) THEN
            PERFORM public.raise_quota_alerts(p_user_id);
        END IF;
    END IF;

    RETURN v_usage_id;
END
$$;
REVOKE ALL ON FUNCTION public.record_ai_usage(
    bigint, integer, integer, integer, integer, text, integer, integer, integer, integer, text,
    text, bigint, bigint, bigint, jsonb, timestamp with time zone, numeric, text, bigint)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.record_ai_usage(
    bigint, integer, integer, integer, integer, text, integer, integer, integer, integer, text,
    text, bigint, bigint, bigint, jsonb, timestamp with time zone, numeric, text, bigint)
    TO witchcraft_app;
