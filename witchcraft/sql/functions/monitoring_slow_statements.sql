-- monitoring_slow_statements(p_min_mean_ms, p_limit): this database's statements whose mean
-- execution time exceeds p_min_mean_ms since pg_stat_statements was last reset, slowest mean
-- first, at most p_limit (1..100); the text cut to 500 characters. No rows unless
-- monitoring_statements_state() is 'ok'. Staff or the service context only.
CREATE OR REPLACE FUNCTION public.monitoring_slow_statements(p_min_mean_ms double precision,
                                                             p_limit integer)
RETURNS TABLE(out_query text, out_calls bigint, out_mean_ms double precision,
              out_max_ms double precision, out_total_ms double precision, out_total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_schema text;
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    v_schema := public.monitoring_statements_schema();
    IF v_schema IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        RETURN QUERY EXECUTE format(
            'SELECT left(s.query, 500), s.calls, s.mean_exec_time, s.max_exec_time,'
            '       s.total_exec_time, count(*) OVER ()'
            '  FROM %I.pg_stat_statements s'
            ' WHERE s.dbid = (SELECT d.oid FROM pg_database d'
            '                  WHERE d.datname = current_database())'
            '   AND s.mean_exec_time > $1'
            ' ORDER BY s.mean_exec_time DESC LIMIT $2', v_schema)
        USING coalesce(p_min_mean_ms, 1000), least(greatest(coalesce(p_limit, 20), 1), 100);
    EXCEPTION WHEN object_not_in_prerequisite_state OR undefined_table THEN
        RETURN;
    END;
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_slow_statements(double precision, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_slow_statements(
    double precision, integer) TO witchcraft_app;
