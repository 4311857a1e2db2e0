-- refresh_usage_daily_totals(p_days): see above. Returns the rows written. Service context or
-- an admin; one refresh at a time (a transaction-level advisory lock).
CREATE OR REPLACE FUNCTION public.refresh_usage_daily_totals(p_days integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_covered date;
    v_from date;
    v_rows integer;
BEGIN
    IF NOT (auth.is_service() OR auth.is_admin()) THEN
        RAISE EXCEPTION 'refresh_usage_daily_totals: staff or the service context only'
            USING ERRCODE = '42501';
    END IF;
    IF p_days IS NOT NULL AND p_days < 0 THEN
        RAISE EXCEPTION 'days must be 0 or more, got %', p_days USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('refresh_usage_daily_totals', 0));
    SELECT s.covered_before INTO v_covered FROM public.ai_usage_totals_state s WHERE s.id = 1;
    v_from := CASE WHEN p_days IS NULL OR v_covered IS NULL THEN '-infinity'::date
                   ELSE least(v_covered, v_today - p_days) END;

    v_rows := public.usage_totals_recompute(v_from, v_today);

    INSERT INTO public.ai_usage_totals_state AS s (id, covered_before, refreshed_at)
    VALUES (1, v_today, now())
    ON CONFLICT (id) DO UPDATE
       SET covered_before = greatest(s.covered_before, excluded.covered_before),
           refreshed_at = excluded.refreshed_at;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.refresh_usage_daily_totals(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.refresh_usage_daily_totals(integer) TO witchcraft_app;
