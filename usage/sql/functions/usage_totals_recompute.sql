-- usage_totals_recompute(from, before): the all-users totals of the days [from, before)
-- computed again from ai_usage_daily; the rows written. Internal: run by the refresh functions
-- (SECURITY DEFINER, after their checks and under their lock), not granted to the runtime role.
CREATE OR REPLACE FUNCTION public.usage_totals_recompute(p_from date, p_before date)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_rows integer;
BEGIN
    DELETE FROM public.ai_usage_daily_totals t
     WHERE t.usage_date >= p_from AND t.usage_date < p_before;
    INSERT INTO public.ai_usage_daily_totals
           (usage_date, provider_id, model_id, request_count, success_count, error_count,
            input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, total_tokens,
            cost, latency_ms_sum, latency_count, updated_at)
    SELECT d.usage_date, d.provider_id, d.model_id, sum(d.request_count), sum(d.success_count),
           sum(d.error_count), sum(d.input_tokens), sum(d.output_tokens),
           sum(d.cached_input_tokens), sum(d.reasoning_tokens), sum(d.total_tokens),
           sum(d.cost), sum(d.latency_ms_sum), sum(d.latency_count), now()
      FROM public.ai_usage_daily d
     WHERE d.usage_date >= p_from AND d.usage_date < p_before
     GROUP BY d.usage_date, d.provider_id, d.model_id;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.usage_totals_recompute(date, date) FROM PUBLIC;
