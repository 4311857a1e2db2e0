-- The AI request flow's recording step and the activity summary (seed: "AI Request Flow",
-- steps 4-8). SECURITY DEFINER (the usage tables are not writable by the runtime role), pinned
-- search_path, every name qualified, the caller checked first (42501).

-- record_ai_usage: record one AI request, in one transaction:
--   1. validate everything (22023 with a message naming the fault, nothing written);
--   2. roll the quota forward if its period ended, then lock the quota row FIRST (lock order,
--      see billing/sql/0002_quota_functions.sql);
--   3. insert the key row (ai_usage_request_keys). A (user, request_id) seen before is a retry:
--      the existing usage id is returned and nothing changes (whatever the other arguments say);
--      concurrent retries wait on the quota lock / the key's unique index and take this path too;
--   4. insert the usage row (same id, user, request id, created_at and agent message as its key);
--   5. add it to ai_usage_daily (UTC day, provider, model) and ai_usage_monthly (UTC month);
--   6. book the quota: the actual tokens / cost minus what check_and_consume_quota reserved for
--      this request (p_reserved_tokens / p_reserved_cost), never below 0; then raise_quota_alerts.
--      The actual amount counts only when created_at falls in the quota's current period (a row
--      placed in another month by p_created_at belongs to that month); the reservation is always
--      released, as it was taken from the current period.
-- Returns the usage id.
--
-- Conventions: input_tokens include cached_input_tokens, output_tokens include reasoning_tokens,
-- total_tokens = input + output. p_cost NULL means "compute it from the model's prices per
-- million tokens": ((input - cached) * input + cached * cached_input + output * output) / 1e6,
-- rounded to 6 places; the prices used are copied onto the row either way. error_count counts
-- every outcome but success. A NULL or empty p_request_id gets a generated one (no idempotency
-- then). When only p_agent_message_id is given, the session is the message's.
-- Agent session totals are kept by a trigger on ai_usage_requests (agents/sql/0003).
--
-- p_created_at places the row in time (tests, demo data, imports). Only the service context may
-- pass it (42501 otherwise): a user must not backdate their own usage out of the current quota
-- period. NULL (the default) means now().
CREATE OR REPLACE FUNCTION public.record_ai_usage(
    p_user_id bigint,
    p_provider_id integer,
    p_model_id integer,
    p_input_tokens integer,
    p_output_tokens integer,
    p_cost numeric DEFAULT NULL,
    p_request_id text DEFAULT NULL,
    p_cached_input_tokens integer DEFAULT 0,
    p_reasoning_tokens integer DEFAULT 0,
    p_latency_ms integer DEFAULT NULL,
    p_time_to_first_token_ms integer DEFAULT NULL,
    p_status text DEFAULT 'success',
    p_error_code text DEFAULT NULL,
    p_agent_session_id bigint DEFAULT NULL,
    p_agent_message_id bigint DEFAULT NULL,
    p_reserved_tokens bigint DEFAULT 0,
    p_reserved_cost numeric DEFAULT 0,
    p_metadata jsonb DEFAULT '{}',
    p_created_at timestamptz DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_model public.ai_models%ROWTYPE;
    v_request_id text := nullif(p_request_id, '');
    v_cached integer := coalesce(p_cached_input_tokens, 0);
    v_reasoning integer := coalesce(p_reasoning_tokens, 0);
    v_status text := coalesce(p_status, 'success');
    v_error_code text := coalesce(p_error_code, '');
    v_reserved_tokens bigint := coalesce(p_reserved_tokens, 0);
    v_reserved_cost numeric := round(coalesce(p_reserved_cost, 0), 6);
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
    PERFORM auth.require_act_for(p_user_id);
    IF p_created_at IS NOT NULL AND NOT auth.is_service() THEN
        RAISE EXCEPTION 'only the service context may set p_created_at' USING ERRCODE = '42501';
    END IF;
    v_created_at := coalesce(p_created_at, now());

    -- 1. Validation: nothing is written before all of it passed.
    IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_user_id) THEN
        RAISE EXCEPTION 'unknown user %', p_user_id USING ERRCODE = '22023';
    END IF;
    SELECT m.* INTO v_model FROM public.ai_models m WHERE m.id = p_model_id;
    IF NOT FOUND OR v_model.provider_id IS DISTINCT FROM p_provider_id THEN
        RAISE EXCEPTION 'model % is not a model of provider %', p_model_id, p_provider_id
            USING ERRCODE = '22023';
    END IF;
    -- Only what the catalog offers now (the batch function refuses the same way).
    IF NOT v_model.is_active OR NOT EXISTS (
        SELECT 1 FROM public.ai_providers p WHERE p.id = p_provider_id AND p.is_active
    ) THEN
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
    IF p_cost < 0 THEN
        RAISE EXCEPTION 'cost must be non-negative, got %', p_cost USING ERRCODE = '22023';
    END IF;
    IF v_reserved_tokens < 0 OR v_reserved_cost < 0 THEN
        RAISE EXCEPTION 'reserved tokens and cost must be non-negative' USING ERRCODE = '22023';
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

    -- 2. The quota row first.
    PERFORM public.roll_quota_forward(p_user_id);
    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;

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

    -- 4. The usage row.
    v_total := p_input_tokens::bigint + p_output_tokens;
    v_cost := round(coalesce(
        p_cost,
        ((p_input_tokens - v_cached)::numeric * v_model.input_price_per_million
         + v_cached::numeric * v_model.cached_input_price_per_million
         + p_output_tokens::numeric * v_model.output_price_per_million) / 1000000
    ), 6);
    v_success := CASE WHEN v_status = 'success' THEN 1 ELSE 0 END;
    v_latency_count := CASE WHEN p_latency_ms IS NULL THEN 0 ELSE 1 END;

    INSERT INTO public.ai_usage_requests
           (id, created_at, user_id, provider_id, model_id, agent_session_id, agent_message_id,
            request_id, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
            total_tokens, cost, input_price_per_million, output_price_per_million,
            cached_input_price_per_million, latency_ms, time_to_first_token_ms, status,
            error_code, error_message, metadata)
    VALUES (v_usage_id, v_created_at, p_user_id, p_provider_id, p_model_id, v_session_id,
            p_agent_message_id, v_request_id, p_input_tokens, p_output_tokens, v_cached,
            v_reasoning, v_total, v_cost, v_model.input_price_per_million,
            v_model.output_price_per_million, v_model.cached_input_price_per_million,
            p_latency_ms, p_time_to_first_token_ms, v_status, v_error_code, '', v_metadata);

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

    -- 6. The quota: actual minus reserved (already locked above).
    IF v_quota.user_id IS NOT NULL THEN
        v_in_period := v_created_at >= v_quota.period_start AND v_created_at < v_quota.period_end;
        UPDATE public.user_quotas AS q
           SET tokens_used = greatest(0, q.tokens_used
                                         + CASE WHEN v_in_period THEN v_total ELSE 0 END
                                         - v_reserved_tokens),
               cost_used = greatest(0, q.cost_used
                                       + CASE WHEN v_in_period THEN v_cost ELSE 0 END
                                       - v_reserved_cost),
               updated_at = now()
         WHERE q.user_id = p_user_id;
        PERFORM public.raise_quota_alerts(p_user_id);
    END IF;

    RETURN v_usage_id;
END
$$;
REVOKE ALL ON FUNCTION public.record_ai_usage(
    bigint, integer, integer, integer, integer, numeric, text, integer, integer, integer, integer,
    text, text, bigint, bigint, bigint, numeric, jsonb, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.record_ai_usage(
    bigint, integer, integer, integer, integer, numeric, text, integer, integer, integer, integer,
    text, text, bigint, bigint, bigint, numeric, jsonb, timestamptz) TO witchcraft_app;

-- get_user_activity_summary(user, days): one row per UTC day of the p_days days ending today
-- (UTC), oldest first, idle days included with zeros. Requests, failures (every outcome but
-- success), tokens and cost come from the daily roll-up (never the raw rows); sessions started
-- and messages from agent_sessions / agent_messages (by their UTC day). p_days: 1 to 366.
CREATE OR REPLACE FUNCTION public.get_user_activity_summary(
    p_user_id bigint, p_days integer DEFAULT 30
) RETURNS TABLE(
    day date,
    requests bigint,
    failures bigint,
    tokens bigint,
    cost numeric,
    sessions_started bigint,
    messages bigint
)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_last date := (now() AT TIME ZONE 'UTC')::date;
    v_first date;
    v_from timestamptz;
    v_to timestamptz;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    IF p_days IS NULL OR p_days NOT BETWEEN 1 AND 366 THEN
        RAISE EXCEPTION 'days must be between 1 and 366, got %', p_days USING ERRCODE = '22023';
    END IF;
    v_first := v_last - (p_days - 1);
    v_from := v_first::timestamp AT TIME ZONE 'UTC';
    v_to := (v_last + 1)::timestamp AT TIME ZONE 'UTC';

    RETURN QUERY
    WITH calendar AS (
        SELECT v_first + i AS d FROM generate_series(0, p_days - 1) AS i
    ), usage_days AS (
        SELECT ud.usage_date AS d,
               sum(ud.request_count)::bigint AS n_requests,
               sum(ud.error_count)::bigint AS n_failures,
               sum(ud.total_tokens)::bigint AS n_tokens,
               sum(ud.cost) AS amount
          FROM public.ai_usage_daily ud
         WHERE ud.user_id = p_user_id AND ud.usage_date BETWEEN v_first AND v_last
         GROUP BY ud.usage_date
    ), session_days AS (
        SELECT (s.started_at AT TIME ZONE 'UTC')::date AS d, count(*)::bigint AS n
          FROM public.agent_sessions s
         WHERE s.user_id = p_user_id AND s.started_at >= v_from AND s.started_at < v_to
         GROUP BY 1
    ), message_days AS (
        SELECT (am.created_at AT TIME ZONE 'UTC')::date AS d, count(*)::bigint AS n
          FROM public.agent_messages am
         WHERE am.user_id = p_user_id AND am.created_at >= v_from AND am.created_at < v_to
         GROUP BY 1
    )
    SELECT c.d,
           coalesce(u.n_requests, 0)::bigint,
           coalesce(u.n_failures, 0)::bigint,
           coalesce(u.n_tokens, 0)::bigint,
           coalesce(u.amount, 0)::numeric,
           coalesce(sd.n, 0)::bigint,
           coalesce(md.n, 0)::bigint
      FROM calendar c
      LEFT JOIN usage_days u ON u.d = c.d
      LEFT JOIN session_days sd ON sd.d = c.d
      LEFT JOIN message_days md ON md.d = c.d
     ORDER BY c.d;
END
$$;
REVOKE ALL ON FUNCTION public.get_user_activity_summary(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_user_activity_summary(bigint, integer) TO witchcraft_app;
