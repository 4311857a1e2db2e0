-- usage_daily_totals_add(...): add one request to its covered day's total (internal to
-- record_ai_usage; nothing when the day is not covered yet: the next refresh counts it).
CREATE OR REPLACE FUNCTION public.usage_daily_totals_add(
    p_day date, p_provider_id integer, p_model_id integer, p_success integer,
    p_input_tokens bigint, p_output_tokens bigint, p_cached_input_tokens bigint,
    p_reasoning_tokens bigint, p_total_tokens bigint, p_cost numeric, p_latency_ms bigint,
    p_latency_count integer
) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, public, pg_temp
AS $$
    INSERT INTO public.ai_usage_daily_totals AS t
           (usage_date, provider_id, model_id, request_count, success_count, error_count,
            input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, total_tokens,
            cost, latency_ms_sum, latency_count, updated_at)
    SELECT p_day, p_provider_id, p_model_id, 1, p_success, 1 - p_success, p_input_tokens,
           p_output_tokens, p_cached_input_tokens, p_reasoning_tokens, p_total_tokens, p_cost,
           p_latency_ms, p_latency_count, now()
     WHERE p_day < (SELECT s.covered_before FROM public.ai_usage_totals_state s WHERE s.id = 1)
    ON CONFLICT (usage_date, provider_id, model_id) DO UPDATE
       SET request_count = t.request_count + excluded.request_count,
           success_count = t.success_count + excluded.success_count,
           error_count = t.error_count + excluded.error_count,
           input_tokens = t.input_tokens + excluded.input_tokens,
           output_tokens = t.output_tokens + excluded.output_tokens,
           cached_input_tokens = t.cached_input_tokens + excluded.cached_input_tokens,
           reasoning_tokens = t.reasoning_tokens + excluded.reasoning_tokens,
           total_tokens = t.total_tokens + excluded.total_tokens,
           cost = t.cost + excluded.cost,
           latency_ms_sum = t.latency_ms_sum + excluded.latency_ms_sum,
           latency_count = t.latency_count + excluded.latency_count,
           updated_at = excluded.updated_at
$$;
REVOKE ALL ON FUNCTION public.usage_daily_totals_add(
    date, integer, integer, integer, bigint, bigint, bigint, bigint, bigint, numeric, bigint,
    integer) FROM PUBLIC;
