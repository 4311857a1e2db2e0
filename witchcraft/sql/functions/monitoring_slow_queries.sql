CREATE OR REPLACE FUNCTION public.monitoring_slow_queries(p_seconds numeric, p_limit integer)
RETURNS TABLE(out_pid integer, out_user text, out_seconds double precision, out_query text,
              out_total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT a.pid, a.usename::text,
           extract(epoch FROM clock_timestamp() - a.query_start)::double precision,
           left(a.query, 500), count(*) OVER ()
      FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.state = 'active'
       AND a.pid <> pg_backend_pid()
       AND a.query_start < clock_timestamp() - make_interval(secs => p_seconds::double precision)
     ORDER BY a.query_start
     LIMIT least(greatest(p_limit, 1), 100);
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_slow_queries(numeric, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_slow_queries(numeric, integer) TO witchcraft_app;
