-- Monitoring an operator can alert on (issue 17): AI requests per status over the last 1, 5
-- and 60 minutes, and the slowest statements from pg_stat_statements, read by staff (and the
-- /metrics scrape's service context) through SECURITY DEFINER functions.

-- The last hour of requests by status. ai_usage_requests had no index on time alone (its only
-- time index leads with user_id), so counting a window read every row of the month's
-- partition. With this index a window is one range scan over the current partition (plan-time
-- pruning: the bound is a parameter), bounded by the hour's traffic; status is included so the
-- count can be answered from the index. created_at only grows (now() when recorded), so the
-- index is appended to at its right edge. Partitions made later get it on ATTACH.
CREATE INDEX IF NOT EXISTS ai_usage_requests_created_status
    ON public.ai_usage_requests (created_at) INCLUDE (status);

-- monitoring_request_windows(p_now): one row per status seen in the 60 minutes before p_now
-- (now() when NULL): the requests of the last 1, 5 and 60 minutes. Rows at or after p_now are
-- not counted, so a caller can pin the clock. Staff or the service context only.
CREATE OR REPLACE FUNCTION public.monitoring_request_windows(p_now timestamptz DEFAULT NULL)
RETURNS TABLE(out_status text, out_last_1m bigint, out_last_5m bigint, out_last_60m bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, now());
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT r.status::text,
           count(*) FILTER (WHERE r.created_at >= v_now - interval '1 minute'),
           count(*) FILTER (WHERE r.created_at >= v_now - interval '5 minutes'),
           count(*)
      FROM public.ai_usage_requests r
     WHERE r.created_at >= v_now - interval '60 minutes' AND r.created_at < v_now
     GROUP BY r.status
     ORDER BY r.status;
END
$$;

-- pg_stat_statements, where the server has it. It lives in a schema of its own that the
-- runtime role cannot enter (the extension grants its views to PUBLIC: query text of every
-- role would be one SELECT away); staff read it through monitoring_slow_statements(). Creating
-- it needs a superuser; the library must also be in shared_preload_libraries (the embedded
-- server adds it when its build has the module) before the view answers.
CREATE SCHEMA IF NOT EXISTS monitoring;
REVOKE ALL ON SCHEMA monitoring FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_stat_statements')
       AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_stat_statements') THEN
        BEGIN
            CREATE EXTENSION pg_stat_statements SCHEMA monitoring;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_stat_statements not created: %', SQLERRM;
        END;
    END IF;
    -- Wherever it lives (a DBA may have made it in public), nobody but its owner and the
    -- functions below reads it.
    PERFORM 1 FROM pg_extension WHERE extname = 'pg_stat_statements';
    IF FOUND THEN
        EXECUTE (SELECT format('REVOKE ALL ON %1$I.pg_stat_statements,'
                               ' %1$I.pg_stat_statements_info FROM PUBLIC', n.nspname)
                   FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                  WHERE e.extname = 'pg_stat_statements');
    END IF;
END
$$;

-- monitoring_statements_schema(): the schema pg_stat_statements is installed in, or NULL.
-- Internal: called by the two functions below as their owner, not granted to anyone.
CREATE OR REPLACE FUNCTION public.monitoring_statements_schema()
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT n.nspname::text
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_stat_statements'
$$;
REVOKE ALL ON FUNCTION public.monitoring_statements_schema() FROM PUBLIC;

-- monitoring_statements_state(): 'ok' when pg_stat_statements answers, 'not_loaded' when the
-- extension exists but its library was not preloaded, 'absent' when it is not installed in
-- this database. Staff or the service context only.
CREATE OR REPLACE FUNCTION public.monitoring_statements_state()
RETURNS text
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
        RETURN 'absent';
    END IF;
    BEGIN
        EXECUTE format('SELECT count(*) FROM %I.pg_stat_statements_info', v_schema);
    EXCEPTION WHEN object_not_in_prerequisite_state OR undefined_table THEN
        RETURN 'not_loaded';
    END;
    RETURN 'ok';
END
$$;

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

REVOKE ALL ON FUNCTION public.monitoring_request_windows(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.monitoring_statements_state() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.monitoring_slow_statements(double precision, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_request_windows(timestamptz) TO witchcraft_app;
GRANT EXECUTE ON FUNCTION public.monitoring_statements_state() TO witchcraft_app;
GRANT EXECUTE ON FUNCTION public.monitoring_slow_statements(double precision, integer)
    TO witchcraft_app;
