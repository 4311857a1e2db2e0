"""New definitions of functions/public.record_ai_usage, functions/public.record_ai_usage_batch.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0021_maintenance_steps"),
        ("agents", "0013_maintenance_steps"),
        ("billing", "0015_maintenance_steps"),
        ("usage", "0017_usage_access_token"),
        ("witchcraft", "0006_maintenance_steps"),
    ]

    operations = [
        DefineSQL(
            name="public.record_ai_usage",
            sha256="f9063658b411d4c23ba35f8294b627d4c2c3b500ebd8ede1909c23848251da41",
            previous="usage.0016_error_message",
            drop_first=[
                "DROP FUNCTION IF EXISTS public.record_ai_usage(bigint,integer,integer,integer,integer,text,integer,integer,integer,integer,text,text,bigint,bigint,bigint,jsonb,timestamp with time zone,numeric,text)",
            ],
            drop_on_reverse=[
                "DROP FUNCTION IF EXISTS public.record_ai_usage(bigint,integer,integer,integer,integer,text,integer,integer,integer,integer,text,text,bigint,bigint,bigint,jsonb,timestamp with time zone,numeric,text,bigint)",
            ],
            sql=r"""-- record_ai_usage: one AI request of a user, recorded in one transaction (the seed's AI request
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
""",
        ),
        DefineSQL(
            name="public.record_ai_usage_batch",
            sha256="61102df9f15e8f5a569a591f367e10d8365830d73ae02d8b228ee276faad465c",
            previous="usage.0016_error_message",
            drop_first=[
                "DROP FUNCTION IF EXISTS public.record_ai_usage_batch(bigint,jsonb)",
            ],
            drop_on_reverse=[
                "DROP FUNCTION IF EXISTS public.record_ai_usage_batch(bigint,jsonb,bigint)",
            ],
            sql=r"""-- record_ai_usage_batch: up to 1,000 AI requests of one user recorded set-wise (the JSON API's
-- POST /usage/batch, and POST /usage as a batch of one), by the rules of record_ai_usage, with
-- an answer per record:
--   recorded   a new usage row (its id);
--   duplicate  the user already has this request_id with the same content (the first row's
--              id; nothing changes);
--   refused    with a reason: 'invalid' (bad value, unknown or inactive model or provider, a
--              provider that does not match the model, a client's cost or reserved amounts),
--              'not_found' (an agent session or message or a reservation that does not exist
--              or is not the user's: existence does not leak) or 'conflict' (the request_id was
--              recorded with other content, the agent message already has a usage record, the
--              reservation was settled or has expired), and the field at fault.
-- Records are JSON objects with the API's field names: request_id (required), provider and/or
-- provider_id, model and/or model_id, the four token counts, latency_ms,
-- time_to_first_token_ms, status, error_code, error_message (only when the request did not
-- succeed; at most 1,000 characters; credentials redacted by ai_usage_redact),
-- agent_session_id, agent_message_id, reservation_id, metadata. Rows are placed at now() and
-- priced from the catalog.
-- p_access_token_id names the API token that sent the batch (the caller's bearer token, set by
-- the server; a record's own "access_token_id" key is ignored): every recorded row carries it.
-- It must be a token of p_user_id, or the call is refused (42501) and nothing is written.
-- The user's lock (the quota row) is taken first, then the work is done in sorted key order,
-- so that concurrent batches, and batches racing record_ai_usage, never deadlock. Statements
-- run with generic plans (plan_cache_mode), as good for one record as for 1,000
-- (bench/README.md).
CREATE OR REPLACE FUNCTION public.record_ai_usage_batch(
    p_user_id bigint, p_records jsonb, p_access_token_id bigint DEFAULT NULL
)
RETURNS TABLE(
    out_index integer,
    out_request_id text,
    out_status text,
    out_usage_id bigint,
    out_total_tokens bigint,
    out_cost numeric,
    out_error_code text,
    out_error_field text,
    out_error_message text
)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    c_max_records constant integer := 1000;
    c_max_tokens constant bigint := 10000000;        -- per request
    c_max_latency constant bigint := 3600000;        -- one hour, in ms
    c_max_cost constant numeric := 10000;            -- US dollars per request
    c_max_id constant bigint := 9223372036854775807;
    c_max_metadata constant integer := 16384;        -- characters of its JSON text
    v_now timestamptz := now();
    v_rows public.ai_usage_batch_row[];
    v_new_request_ids text[];
    v_new_usage_ids bigint[];
    v_quota public.user_quotas%ROWTYPE;
    v_tokens bigint;
    v_cost numeric;
    v_held_tokens bigint;
    v_held_cost numeric;
BEGIN
    PERFORM auth.require_record_for(p_user_id);
    IF p_records IS NULL OR jsonb_typeof(p_records) <> 'array' THEN
        RAISE EXCEPTION 'records must be a JSON array' USING ERRCODE = '22023';
    END IF;
    IF jsonb_array_length(p_records) > c_max_records THEN
        RAISE EXCEPTION 'a batch holds at most % records, got %', c_max_records,
            jsonb_array_length(p_records) USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_user_id) THEN
        RAISE EXCEPTION 'unknown user %', p_user_id USING ERRCODE = '22023';
    END IF;
    IF p_access_token_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM public.access_tokens t
         WHERE t.id = p_access_token_id AND t.user_id = p_user_id
    ) THEN
        RAISE EXCEPTION 'access token % is not a token of user %', p_access_token_id, p_user_id
            USING ERRCODE = '42501';
    END IF;

    -- 0. The user's lock first: the quota row (rolled forward if its period ended), the user's
    -- expired holds given back; the reservations the records name are then read under it, so
    -- two batches cannot both settle one reservation.
    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    IF FOUND THEN
        IF v_quota.period_end <= v_now THEN
            PERFORM public.roll_quota_forward(p_user_id);
            SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id;
        END IF;
        IF public.quota_has_expired_holds(p_user_id) THEN
            PERFORM public.quota_reservations_release_expired(p_user_id);
        END IF;
    ELSE
        PERFORM pg_advisory_xact_lock(hashtextextended('ai_usage:user:' || p_user_id, 0));
    END IF;

    -- 1. Validation, one statement for the whole batch.
    WITH src AS (
        SELECT (e.ord - 1)::integer AS idx,
               jsonb_typeof(e.rec) = 'object' AS is_object,
               CASE WHEN jsonb_typeof(e.rec) = 'object' THEN e.rec ELSE '{}'::jsonb END AS r
          FROM jsonb_array_elements(p_records) WITH ORDINALITY AS e(rec, ord)
    ), parsed AS MATERIALIZED (  -- once per record (inlined, every use re-parsed it)
        SELECT s.idx,
               s.is_object,
               public.ai_usage_batch_is_text(s.r -> 'request_id', 100)
                   AND coalesce(s.r ->> 'request_id', '') <> '' AS request_id_ok,
               s.r ->> 'request_id' AS request_id,
               public.ai_usage_batch_count(s.r -> 'provider_id', 2147483647) AS provider_id,
               public.ai_usage_batch_is_text(s.r -> 'provider', 40) AS provider_ok,
               s.r ->> 'provider' AS provider_slug,
               public.ai_usage_batch_count(s.r -> 'model_id', 2147483647) AS model_id,
               public.ai_usage_batch_is_text(s.r -> 'model', 100) AS model_ok,
               s.r ->> 'model' AS model_name,
               public.ai_usage_batch_count(s.r -> 'input_tokens', c_max_tokens) AS input_tokens,
               public.ai_usage_batch_count(s.r -> 'output_tokens', c_max_tokens) AS output_tokens,
               coalesce(public.ai_usage_batch_count(s.r -> 'cached_input_tokens', c_max_tokens),
                        0) AS cached_input_tokens,
               coalesce(public.ai_usage_batch_count(s.r -> 'reasoning_tokens', c_max_tokens),
                        0) AS reasoning_tokens,
               s.r ? 'cost' AS has_cost,
               public.ai_usage_batch_count(s.r -> 'latency_ms', c_max_latency) AS latency_ms,
               public.ai_usage_batch_count(s.r -> 'time_to_first_token_ms', c_max_latency)
                   AS time_to_first_token_ms,
               public.ai_usage_batch_is_text(s.r -> 'status', 16) AS status_ok,
               coalesce(s.r ->> 'status', 'success') AS status,
               public.ai_usage_batch_is_text(s.r -> 'error_code', 100) AS error_code_ok,
               coalesce(s.r ->> 'error_code', '') AS error_code,
               public.ai_usage_batch_is_text(s.r -> 'error_message', 1000) AS error_message_ok,
               coalesce(s.r ->> 'error_message', '') AS error_message,
               public.ai_usage_batch_count(s.r -> 'agent_session_id', c_max_id)
                   AS agent_session_id,
               public.ai_usage_batch_count(s.r -> 'agent_message_id', c_max_id)
                   AS agent_message_id,
               CASE WHEN s.r ? 'reserved_tokens' THEN 'reserved_tokens'
                    WHEN s.r ? 'reserved_cost' THEN 'reserved_cost' END AS old_reserved_field,
               public.ai_usage_batch_count(s.r -> 'reservation_id', c_max_id) AS reservation_id,
               CASE WHEN s.r -> 'metadata' IS NULL OR jsonb_typeof(s.r -> 'metadata') = 'null'
                    THEN '{}'::jsonb
                    WHEN jsonb_typeof(s.r -> 'metadata') = 'object'
                         AND length((s.r -> 'metadata')::text) <= c_max_metadata
                    THEN s.r -> 'metadata' END AS metadata
          FROM src s
    ), resolved AS (
        SELECT p.*,
               pv.id AS pv_id, pv.slug AS pv_slug, pv.is_active AS pv_active,
               m.id AS m_id, m.name AS m_name, m.provider_id AS m_provider_id,
               m.is_active AS m_active, m.matches AS m_matches,
               m.input_price_per_million, m.output_price_per_million,
               m.cached_input_price_per_million,
               mp.slug AS m_provider_slug, mp.is_active AS m_provider_active,
               am.user_id AS message_owner, am.session_id AS message_session,
               se.user_id AS session_owner,
               rv.user_id AS rv_owner, rv.tokens AS rv_tokens, rv.cost AS rv_cost,
               rv.period_start AS rv_period_start, rv.expires_at AS rv_expires_at,
               rv.settled_at AS rv_settled_at, rv.released_at AS rv_released_at,
               rv.request_id AS rv_request_id,
               EXISTS (
                   SELECT 1 FROM public.ai_usage_request_keys k
                    WHERE p.reservation_id > 0 AND p.request_id_ok
                      AND k.user_id = p_user_id AND k.request_id = p.request_id
               ) AS already_recorded,
               p.model_id IS NULL AND p.model_ok AND EXISTS (
                   SELECT 1 FROM public.ai_models other WHERE other.name = p.model_name
               ) AS model_name_known
          FROM parsed p
          LEFT JOIN LATERAL (
                SELECT pr.id, pr.slug, pr.is_active
                  FROM public.ai_providers pr
                 WHERE (p.provider_id > 0 AND pr.id = p.provider_id)
                    OR (p.provider_id IS NULL AND p.provider_ok AND pr.slug = p.provider_slug)
          ) pv ON true
          LEFT JOIN LATERAL (
                SELECT mo.id, mo.name, mo.provider_id, mo.is_active,
                       mo.input_price_per_million, mo.output_price_per_million,
                       mo.cached_input_price_per_million, count(*) OVER () AS matches
                  FROM public.ai_models mo
                 WHERE (p.model_id > 0 AND mo.id = p.model_id)
                    OR (p.model_id IS NULL AND p.model_ok AND mo.name = p.model_name
                        AND (pv.id IS NULL OR mo.provider_id = pv.id))
                 LIMIT 1
          ) m ON true
          LEFT JOIN public.ai_providers mp ON mp.id = m.provider_id
          -- Looked up by primary key, record by record (LIMIT 1 keeps the planner from
          -- joining the whole table instead).
          LEFT JOIN LATERAL (
                SELECT a.user_id, a.session_id
                  FROM public.agent_messages a
                 WHERE p.agent_message_id > 0 AND a.id = p.agent_message_id
                 LIMIT 1
          ) am ON true
          LEFT JOIN LATERAL (
                SELECT s.user_id
                  FROM public.agent_sessions s
                 WHERE s.id = CASE WHEN p.agent_session_id > 0 THEN p.agent_session_id
                                   ELSE am.session_id END
                 LIMIT 1
          ) se ON true
          LEFT JOIN LATERAL (
                SELECT q.user_id, q.tokens, q.cost, q.period_start, q.expires_at, q.settled_at,
                       q.released_at, q.request_id
                  FROM public.quota_reservations q
                 WHERE p.reservation_id > 0 AND q.id = p.reservation_id
                 LIMIT 1
          ) rv ON true
    ), checked AS (
        SELECT r.*,
               CASE
                 WHEN NOT r.is_object THEN
                   ARRAY['invalid', NULL, 'each record must be a JSON object']
                 WHEN NOT r.request_id_ok THEN
                   ARRAY['invalid', 'request_id',
                         'request_id is required: a string of 1 to 100 characters']
                 WHEN r.provider_id = -1 OR r.provider_id = 0 THEN
                   ARRAY['invalid', 'provider_id', 'provider_id must be a positive whole number']
                 WHEN NOT r.provider_ok THEN
                   ARRAY['invalid', 'provider', 'provider must be a slug of at most 40 characters']
                 WHEN r.model_id = -1 OR r.model_id = 0 THEN
                   ARRAY['invalid', 'model_id', 'model_id must be a positive whole number']
                 WHEN NOT r.model_ok THEN
                   ARRAY['invalid', 'model', 'model must be a name of at most 100 characters']
                 WHEN r.provider_id IS NOT NULL AND r.pv_id IS NULL THEN
                   ARRAY['invalid', 'provider_id', format('unknown provider %s', r.provider_id)]
                 WHEN r.provider_slug IS NOT NULL AND r.pv_id IS NULL THEN
                   ARRAY['invalid', 'provider', format('unknown provider %L', r.provider_slug)]
                 WHEN r.provider_slug IS NOT NULL AND r.pv_slug <> r.provider_slug THEN
                   ARRAY['invalid', 'provider',
                         format('provider %L is not provider %s', r.provider_slug, r.pv_id)]
                 WHEN r.pv_id IS NOT NULL AND NOT r.pv_active THEN
                   ARRAY['invalid', CASE WHEN r.provider_id IS NULL THEN 'provider'
                                         ELSE 'provider_id' END,
                         format('provider %L is not available', r.pv_slug)]
                 WHEN r.model_id IS NULL AND r.model_name IS NULL THEN
                   ARRAY['invalid', 'model', 'model (a name) or model_id is required']
                 WHEN r.model_id IS NOT NULL AND r.m_id IS NULL THEN
                   ARRAY['invalid', 'model_id', format('unknown model %s', r.model_id)]
                 WHEN r.m_id IS NULL AND r.pv_id IS NOT NULL AND r.model_name_known THEN
                   ARRAY['invalid', CASE WHEN r.provider_id IS NULL THEN 'provider'
                                         ELSE 'provider_id' END,
                         format('model %L is not a model of provider %L', r.model_name,
                                r.pv_slug)]
                 WHEN r.m_id IS NULL AND r.pv_id IS NOT NULL THEN
                   ARRAY['invalid', 'model', format('unknown model %L of provider %L',
                                                    r.model_name, r.pv_slug)]
                 WHEN r.m_id IS NULL THEN
                   ARRAY['invalid', 'model', format('unknown model %L', r.model_name)]
                 WHEN r.m_matches > 1 THEN
                   ARRAY['invalid', 'provider',
                         format('several providers have a model %L: name the provider',
                                r.model_name)]
                 WHEN r.model_name IS NOT NULL AND r.m_name <> r.model_name THEN
                   ARRAY['invalid', 'model',
                         format('model %L is not model %s', r.model_name, r.m_id)]
                 WHEN NOT r.m_active OR NOT r.m_provider_active THEN
                   ARRAY['invalid', CASE WHEN r.model_id IS NULL THEN 'model' ELSE 'model_id' END,
                         format('model %L is not available', r.m_name)]
                 WHEN r.pv_id IS NOT NULL AND r.pv_id <> r.m_provider_id THEN
                   ARRAY['invalid', CASE WHEN r.provider_id IS NULL THEN 'provider'
                                         ELSE 'provider_id' END,
                         format('model %L is not a model of provider %L', r.m_name, r.pv_slug)]
                 WHEN r.has_cost THEN
                   ARRAY['invalid', 'cost',
                         'cost is not accepted: the server prices every request from the catalog']
                 WHEN r.old_reserved_field IS NOT NULL THEN
                   ARRAY['invalid', r.old_reserved_field,
                         format('%s is no longer accepted: pass reservation_id, the id '
                                'POST /quota/consume answered', r.old_reserved_field)]
                 WHEN r.reservation_id = -1 OR r.reservation_id = 0 THEN
                   ARRAY['invalid', 'reservation_id',
                         'reservation_id must be a positive whole number']
                 WHEN r.input_tokens IS NULL OR r.input_tokens < 0 THEN
                   ARRAY['invalid', 'input_tokens', format(
                         'input_tokens is required: a whole number from 0 to %s', c_max_tokens)]
                 WHEN r.output_tokens IS NULL OR r.output_tokens < 0 THEN
                   ARRAY['invalid', 'output_tokens', format(
                         'output_tokens is required: a whole number from 0 to %s', c_max_tokens)]
                 WHEN r.cached_input_tokens < 0 THEN
                   ARRAY['invalid', 'cached_input_tokens', format(
                         'cached_input_tokens must be a whole number from 0 to %s', c_max_tokens)]
                 WHEN r.reasoning_tokens < 0 THEN
                   ARRAY['invalid', 'reasoning_tokens', format(
                         'reasoning_tokens must be a whole number from 0 to %s', c_max_tokens)]
                 WHEN r.cached_input_tokens > r.input_tokens THEN
                   ARRAY['invalid', 'cached_input_tokens', format(
                         'cached input tokens (%s) cannot exceed input tokens (%s)',
                         r.cached_input_tokens, r.input_tokens)]
                 WHEN r.reasoning_tokens > r.output_tokens THEN
                   ARRAY['invalid', 'reasoning_tokens', format(
                         'reasoning tokens (%s) cannot exceed output tokens (%s)',
                         r.reasoning_tokens, r.output_tokens)]
                 WHEN r.latency_ms < 0 THEN
                   ARRAY['invalid', 'latency_ms',
                         format('latency_ms must be a whole number from 0 to %s', c_max_latency)]
                 WHEN r.time_to_first_token_ms < 0 THEN
                   ARRAY['invalid', 'time_to_first_token_ms', format(
                         'time_to_first_token_ms must be a whole number from 0 to %s',
                         c_max_latency)]
                 WHEN NOT r.status_ok OR r.status NOT IN
                        ('success', 'error', 'timeout', 'cancelled', 'rejected') THEN
                   ARRAY['invalid', 'status',
                         'status must be one of success, error, timeout, cancelled, rejected']
                 WHEN NOT r.error_code_ok THEN
                   ARRAY['invalid', 'error_code', 'error_code has at most 100 characters']
                 WHEN NOT r.error_message_ok THEN
                   ARRAY['invalid', 'error_message', 'error_message has at most 1000 characters']
                 WHEN r.error_message <> '' AND r.status = 'success' THEN
                   ARRAY['invalid', 'error_message',
                         'an error message is only for a request that did not succeed']
                 WHEN r.metadata IS NULL THEN
                   ARRAY['invalid', 'metadata', format(
                         'metadata must be a JSON object of at most %s characters',
                         c_max_metadata)]
                 WHEN r.agent_message_id = -1 OR r.agent_message_id = 0 THEN
                   ARRAY['invalid', 'agent_message_id',
                         'agent_message_id must be a positive whole number']
                 WHEN r.agent_session_id = -1 OR r.agent_session_id = 0 THEN
                   ARRAY['invalid', 'agent_session_id',
                         'agent_session_id must be a positive whole number']
                 WHEN r.agent_message_id IS NOT NULL
                      AND r.message_owner IS DISTINCT FROM p_user_id THEN
                   ARRAY['not_found', 'agent_message_id',
                         format('agent message %s not found', r.agent_message_id)]
                 WHEN r.agent_session_id IS NOT NULL
                      AND r.session_owner IS DISTINCT FROM p_user_id THEN
                   ARRAY['not_found', 'agent_session_id',
                         format('agent session %s not found', r.agent_session_id)]
                 WHEN r.agent_message_id IS NOT NULL AND r.agent_session_id IS NOT NULL
                      AND r.message_session <> r.agent_session_id THEN
                   ARRAY['invalid', 'agent_message_id',
                         format('agent message %s is not a message of agent session %s',
                                r.agent_message_id, r.agent_session_id)]
                 -- A record already recorded is answered as a duplicate (or a conflict) later,
                 -- whatever became of its reservation since.
                 WHEN r.reservation_id IS NULL OR r.already_recorded THEN NULL
                 WHEN r.rv_owner IS DISTINCT FROM p_user_id THEN
                   ARRAY['not_found', 'reservation_id',
                         format('reservation %s not found', r.reservation_id)]
                 WHEN r.rv_settled_at IS NOT NULL THEN
                   ARRAY['conflict', 'reservation_id',
                         format('reservation %s was already settled by request_id %L',
                                r.reservation_id, r.rv_request_id)]
                 WHEN r.rv_released_at IS NOT NULL OR r.rv_expires_at <= v_now THEN
                   ARRAY['conflict', 'reservation_id',
                         format('reservation %s expired at %s and its hold was given back: '
                                'record the usage without reservation_id', r.reservation_id,
                                r.rv_expires_at)]
               END AS refusal
          FROM resolved r
    ), once AS (  -- a reservation settles one request: the first record that names it
        SELECT c.*,
               coalesce(c.refusal, CASE
                 WHEN c.refusal IS NULL AND c.reservation_id IS NOT NULL
                      AND first_value(c.request_id) OVER (
                              PARTITION BY c.refusal IS NULL, c.reservation_id ORDER BY c.idx)
                          IS DISTINCT FROM c.request_id THEN
                   ARRAY['conflict', 'reservation_id',
                         format('reservation %s is named by an earlier record of this batch',
                                c.reservation_id)]
               END) AS final_refusal
          FROM checked c
    ), valid AS (
        SELECT c.*,
               c.final_refusal IS NULL
                 AND row_number() OVER (PARTITION BY c.final_refusal IS NULL, c.request_id
                                        ORDER BY c.idx) = 1 AS is_candidate,
               CASE WHEN c.final_refusal IS NULL THEN
                    round(((c.input_tokens - c.cached_input_tokens)::numeric
                              * c.input_price_per_million
                           + c.cached_input_tokens::numeric * c.cached_input_price_per_million
                           + c.output_tokens::numeric * c.output_price_per_million) / 1000000,
                          6) END AS cost,
               -- What the reservation holds in the quota's current period (a hold of an
               -- earlier period went with that period's counters).
               CASE WHEN c.final_refusal IS NULL AND c.reservation_id IS NOT NULL
                         AND NOT c.already_recorded
                         AND c.rv_period_start = v_quota.period_start
                    THEN c.rv_tokens ELSE 0 END AS held_tokens,
               CASE WHEN c.final_refusal IS NULL AND c.reservation_id IS NOT NULL
                         AND NOT c.already_recorded
                         AND c.rv_period_start = v_quota.period_start
                    THEN c.rv_cost ELSE 0 END AS held_cost
          FROM once c
    )
    SELECT array_agg(ROW(
               v.idx,
               CASE WHEN v.request_id_ok THEN v.request_id END,
               v.m_provider_id,
               v.m_id,
               v.input_tokens::integer,
               v.output_tokens::integer,
               v.cached_input_tokens::integer,
               v.reasoning_tokens::integer,
               v.input_tokens + v.output_tokens,
               v.cost,
               v.input_price_per_million,
               v.output_price_per_million,
               v.cached_input_price_per_million,
               v.latency_ms::integer,
               v.time_to_first_token_ms::integer,
               v.status,
               v.error_code,
               coalesce(CASE WHEN v.agent_session_id > 0 THEN v.agent_session_id END,
                        v.message_session),
               CASE WHEN v.agent_message_id > 0 THEN v.agent_message_id END,
               v.reservation_id,
               v.held_tokens,
               v.held_cost,
               v.metadata,
               v.is_candidate,
               v.final_refusal[1],
               v.final_refusal[2],
               v.final_refusal[3],
               public.ai_usage_redact(v.error_message)
           )::public.ai_usage_batch_row ORDER BY v.idx)
      INTO v_rows
      FROM valid v;

    IF EXISTS (SELECT 1 FROM unnest(v_rows) c WHERE c.is_candidate) THEN
        -- (2. The user's lock was taken in step 0.)

        -- 3. Key rows, sorted: an existing (user, request_id) or agent message is skipped.
        WITH inserted AS (
            INSERT INTO public.ai_usage_request_keys AS k
                   (usage_id, user_id, request_id, agent_message_id, created_at)
            SELECT nextval('public.ai_usage_requests_id_seq'), p_user_id, c.request_id,
                   c.agent_message_id, v_now
              FROM unnest(v_rows) c
             WHERE c.is_candidate
             ORDER BY c.request_id COLLATE "C"
            ON CONFLICT DO NOTHING
            RETURNING k.request_id, k.usage_id
        )
        SELECT array_agg(i.request_id), array_agg(i.usage_id)
          INTO v_new_request_ids, v_new_usage_ids
          FROM inserted i;

        IF v_new_request_ids IS NOT NULL THEN
            -- 4. The usage rows of the new keys, in agent session order, and the reservations
            -- they settle.
            UPDATE public.quota_reservations AS r
               SET settled_at = v_now, usage_id = n.usage_id, request_id = c.request_id
              FROM unnest(v_rows) c
              JOIN unnest(v_new_request_ids, v_new_usage_ids) AS n(request_id, usage_id)
                ON n.request_id = c.request_id
             WHERE c.is_candidate AND c.reservation_id IS NOT NULL AND r.id = c.reservation_id;

            INSERT INTO public.ai_usage_requests
                   (id, created_at, user_id, provider_id, model_id, agent_session_id,
                    agent_message_id, reservation_id, request_id, input_tokens, output_tokens,
                    cached_input_tokens, reasoning_tokens, total_tokens, cost,
                    input_price_per_million, output_price_per_million,
                    cached_input_price_per_million, latency_ms, time_to_first_token_ms, status,
                    error_code, error_message, metadata, access_token_id)
            SELECT n.usage_id, v_now, p_user_id, c.provider_id, c.model_id, c.agent_session_id,
                   c.agent_message_id, c.reservation_id, c.request_id, c.input_tokens, c.output_tokens,
                   c.cached_input_tokens, c.reasoning_tokens, c.total_tokens, c.cost,
                   c.input_price_per_million, c.output_price_per_million,
                   c.cached_input_price_per_million, c.latency_ms, c.time_to_first_token_ms,
                   c.status, c.error_code, c.error_message, c.metadata, p_access_token_id
              FROM unnest(v_rows) c
              JOIN unnest(v_new_request_ids, v_new_usage_ids) AS n(request_id, usage_id)
                ON n.request_id = c.request_id
             WHERE c.is_candidate
             ORDER BY c.agent_session_id NULLS FIRST, c.request_id COLLATE "C";

            -- 5. The roll-ups, aggregated and in conflict-key order.
            INSERT INTO public.ai_usage_daily AS d
                   (user_id, usage_date, provider_id, model_id, request_count, success_count,
                    error_count, input_tokens, output_tokens, cached_input_tokens,
                    reasoning_tokens, total_tokens, cost, latency_ms_sum, latency_count,
                    updated_at)
            SELECT p_user_id, (v_now AT TIME ZONE 'UTC')::date, c.provider_id, c.model_id,
                   count(*), count(*) FILTER (WHERE c.status = 'success'),
                   count(*) FILTER (WHERE c.status <> 'success'), sum(c.input_tokens),
                   sum(c.output_tokens), sum(c.cached_input_tokens), sum(c.reasoning_tokens),
                   sum(c.total_tokens), sum(c.cost), coalesce(sum(c.latency_ms), 0),
                   count(c.latency_ms), now()
              FROM unnest(v_rows) c
              JOIN unnest(v_new_request_ids) AS n(request_id) ON n.request_id = c.request_id
             WHERE c.is_candidate
             GROUP BY c.provider_id, c.model_id
             ORDER BY c.provider_id, c.model_id
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
                   (user_id, year, month, request_count, success_count, error_count,
                    input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
                    total_tokens, cost, latency_ms_sum, latency_count, updated_at)
            SELECT p_user_id, extract(year FROM v_now AT TIME ZONE 'UTC')::smallint,
                   extract(month FROM v_now AT TIME ZONE 'UTC')::smallint,
                   count(*), count(*) FILTER (WHERE c.status = 'success'),
                   count(*) FILTER (WHERE c.status <> 'success'), sum(c.input_tokens),
                   sum(c.output_tokens), sum(c.cached_input_tokens), sum(c.reasoning_tokens),
                   sum(c.total_tokens), sum(c.cost), coalesce(sum(c.latency_ms), 0),
                   count(c.latency_ms), now()
              FROM unnest(v_rows) c
              JOIN unnest(v_new_request_ids) AS n(request_id) ON n.request_id = c.request_id
             WHERE c.is_candidate
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

            -- 6. The quota, booked once (its row is locked since step 0): the actual amounts
            -- minus what the settled reservations held.
            IF v_quota.user_id IS NOT NULL THEN
                SELECT sum(c.total_tokens), sum(c.cost), sum(c.held_tokens), sum(c.held_cost)
                  INTO v_tokens, v_cost, v_held_tokens, v_held_cost
                  FROM unnest(v_rows) c
                  JOIN unnest(v_new_request_ids) AS n(request_id) ON n.request_id = c.request_id
                 WHERE c.is_candidate;
                IF NOT (v_now >= v_quota.period_start AND v_now < v_quota.period_end) THEN
                    v_tokens := 0;
                    v_cost := 0;
                END IF;
                UPDATE public.user_quotas AS q
                   SET tokens_used = greatest(0, q.tokens_used + v_tokens - v_held_tokens),
                       cost_used = greatest(0, q.cost_used + v_cost - v_held_cost),
                       updated_at = now()
                 WHERE q.user_id = p_user_id
                RETURNING q.* INTO v_quota;
                IF public.quota_may_alert(v_quota) THEN
                    PERFORM public.raise_quota_alerts(p_user_id);
                END IF;
            END IF;
        END IF;
    END IF;

    -- 7. The answer per record. A new statement: duplicates are compared with what is stored
    -- now, including rows that concurrent transactions committed while we waited for them.
    RETURN QUERY
    WITH answered AS (
        SELECT c.idx, c.request_id, c.refusal_code, c.refusal_field, c.refusal_message,
               c.total_tokens, c.cost,
               n.usage_id AS new_id,
               s.id AS stored_id, s.total_tokens AS stored_tokens, s.cost AS stored_cost,
               (s.provider_id = c.provider_id
                AND s.model_id = c.model_id
                AND s.input_tokens = c.input_tokens
                AND s.output_tokens = c.output_tokens
                AND s.cached_input_tokens = c.cached_input_tokens
                AND s.reasoning_tokens = c.reasoning_tokens
                AND s.status = c.status
                AND s.error_code = c.error_code
                AND s.error_message = c.error_message
                AND s.latency_ms IS NOT DISTINCT FROM c.latency_ms
                AND s.time_to_first_token_ms IS NOT DISTINCT FROM c.time_to_first_token_ms
                AND s.agent_session_id IS NOT DISTINCT FROM c.agent_session_id
                AND s.agent_message_id IS NOT DISTINCT FROM c.agent_message_id
                AND s.metadata = c.metadata
                AND s.reservation_id IS NOT DISTINCT FROM c.reservation_id) AS same_content
          FROM unnest(v_rows) c
          LEFT JOIN unnest(v_new_request_ids, v_new_usage_ids) AS n(request_id, usage_id)
                 ON c.is_candidate AND n.request_id = c.request_id
          LEFT JOIN public.ai_usage_request_keys k
                 ON c.refusal_code IS NULL AND k.user_id = p_user_id
                    AND k.request_id = c.request_id
          LEFT JOIN public.ai_usage_requests s
                 ON s.id = k.usage_id AND s.created_at = k.created_at
    )
    SELECT a.idx,
           a.request_id,
           CASE WHEN a.refusal_code IS NOT NULL THEN 'refused'
                WHEN a.new_id IS NOT NULL THEN 'recorded'
                WHEN a.same_content THEN 'duplicate'
                ELSE 'refused' END,
           CASE WHEN a.refusal_code IS NOT NULL THEN NULL
                WHEN a.new_id IS NOT NULL THEN a.new_id
                WHEN a.same_content THEN a.stored_id END,
           CASE WHEN a.refusal_code IS NOT NULL THEN NULL
                WHEN a.new_id IS NOT NULL THEN a.total_tokens
                WHEN a.same_content THEN a.stored_tokens END,
           CASE WHEN a.refusal_code IS NOT NULL THEN NULL
                WHEN a.new_id IS NOT NULL THEN a.cost
                WHEN a.same_content THEN a.stored_cost END,
           CASE WHEN a.refusal_code IS NOT NULL THEN a.refusal_code
                WHEN a.new_id IS NOT NULL OR a.same_content THEN NULL
                ELSE 'conflict' END,
           CASE WHEN a.refusal_code IS NOT NULL THEN a.refusal_field
                WHEN a.new_id IS NOT NULL OR a.same_content THEN NULL
                WHEN a.stored_id IS NULL THEN 'agent_message_id'
                ELSE 'request_id' END,
           CASE WHEN a.refusal_code IS NOT NULL THEN a.refusal_message
                WHEN a.new_id IS NOT NULL OR a.same_content THEN NULL
                WHEN a.stored_id IS NULL THEN
                    format('the agent message of request_id %L already has a usage record',
                           a.request_id)
                ELSE format('request_id %L was already recorded with different content',
                            a.request_id) END
      FROM answered a
     ORDER BY a.idx;
END
$$;
REVOKE ALL ON FUNCTION public.record_ai_usage_batch(bigint, jsonb, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.record_ai_usage_batch(bigint, jsonb, bigint) TO witchcraft_app;
""",
        ),
    ]
