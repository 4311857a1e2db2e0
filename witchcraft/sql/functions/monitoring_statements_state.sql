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
REVOKE ALL ON FUNCTION public.monitoring_statements_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_statements_state() TO witchcraft_app;
