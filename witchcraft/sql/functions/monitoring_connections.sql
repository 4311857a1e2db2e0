-- Monitoring reads for the staff dashboard. The runtime role sees no other connection's state
-- or query text in pg_stat_activity (rightly: query text can hold data); these functions give
-- admins (and the service context) what the monitoring page needs, for this database only.
CREATE OR REPLACE FUNCTION public.monitoring_connections()
RETURNS TABLE(total bigint, active bigint, idle_in_transaction bigint, server_max integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT count(*), count(*) FILTER (WHERE a.state = 'active'),
           count(*) FILTER (WHERE a.state LIKE 'idle in transaction%'),
           current_setting('max_connections')::integer
      FROM pg_stat_activity a WHERE a.datname = current_database();
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_connections() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_connections() TO witchcraft_app;
