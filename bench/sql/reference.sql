-- The references the benchmark measures Witchcraft's SQL functions against (bench/README.md).
-- Created in the benchmark's own database only, in a schema of its own; never in a migration.
--
-- bench.minimal_record_usage: only the seed's four writes of an AI request, nothing else: the
-- usage row (with the key row its foreign key requires, ai_usage_requests_key_fk), the upserts
-- of ai_usage_daily and ai_usage_monthly, and the quota update. No validation, no idempotency
-- check, no roll-forward, no alerts, no caller check. SECURITY DEFINER like the real function,
-- so both run the same way for the runtime role.
--
-- bench.minimal_consume_quota: the conditional UPDATE at the heart of check_and_consume_quota,
-- nothing around it.
CREATE SCHEMA IF NOT EXISTS bench;
GRANT USAGE ON SCHEMA bench TO witchcraft_app;

CREATE OR REPLACE FUNCTION bench.minimal_record_usage(
    p_user_id bigint, p_provider_id integer, p_model_id integer,
    p_input_tokens integer, p_output_tokens integer, p_cost numeric
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_id bigint := nextval('public.ai_usage_requests_id_seq');
    v_now timestamptz := now();
    v_request text := gen_random_uuid()::text;
    v_total bigint := p_input_tokens::bigint + p_output_tokens;
BEGIN
    INSERT INTO public.ai_usage_request_keys (usage_id, user_id, request_id, created_at)
    VALUES (v_id, p_user_id, v_request, v_now);
    INSERT INTO public.ai_usage_requests
           (id, created_at, user_id, provider_id, model_id, request_id, input_tokens,
            output_tokens, total_tokens, cost)
    VALUES (v_id, v_now, p_user_id, p_provider_id, p_model_id, v_request, p_input_tokens,
            p_output_tokens, v_total, p_cost);
    INSERT INTO public.ai_usage_daily AS d
           (user_id, usage_date, provider_id, model_id, request_count, success_count,
            error_count, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
            total_tokens, cost, latency_ms_sum, latency_count)
    VALUES (p_user_id, (v_now AT TIME ZONE 'UTC')::date, p_provider_id, p_model_id, 1, 1, 0,
            p_input_tokens, p_output_tokens, 0, 0, v_total, p_cost, 0, 0)
    ON CONFLICT (user_id, usage_date, provider_id, model_id) DO UPDATE
       SET request_count = d.request_count + 1, success_count = d.success_count + 1,
           input_tokens = d.input_tokens + excluded.input_tokens,
           output_tokens = d.output_tokens + excluded.output_tokens,
           total_tokens = d.total_tokens + excluded.total_tokens,
           cost = d.cost + excluded.cost;
    INSERT INTO public.ai_usage_monthly AS mo
           (user_id, year, month, request_count, success_count, error_count, input_tokens,
            output_tokens, cached_input_tokens, reasoning_tokens, total_tokens, cost,
            latency_ms_sum, latency_count)
    VALUES (p_user_id, extract(year FROM v_now AT TIME ZONE 'UTC')::smallint,
            extract(month FROM v_now AT TIME ZONE 'UTC')::smallint, 1, 1, 0, p_input_tokens,
            p_output_tokens, 0, 0, v_total, p_cost, 0, 0)
    ON CONFLICT (user_id, year, month) DO UPDATE
       SET request_count = mo.request_count + 1, success_count = mo.success_count + 1,
           input_tokens = mo.input_tokens + excluded.input_tokens,
           output_tokens = mo.output_tokens + excluded.output_tokens,
           total_tokens = mo.total_tokens + excluded.total_tokens,
           cost = mo.cost + excluded.cost;
    UPDATE public.user_quotas AS q
       SET tokens_used = q.tokens_used + v_total, cost_used = q.cost_used + p_cost
     WHERE q.user_id = p_user_id;
    RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION bench.minimal_consume_quota(
    p_user_id bigint, p_tokens bigint, p_cost numeric
) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    WITH reserved AS (
        UPDATE public.user_quotas AS q
           SET tokens_used = q.tokens_used + p_tokens, cost_used = q.cost_used + p_cost
         WHERE q.user_id = p_user_id
           AND p_tokens <= q.tokens_limit - q.tokens_used
           AND p_cost <= q.cost_limit - q.cost_used
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM reserved)
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA bench FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA bench TO witchcraft_app;
