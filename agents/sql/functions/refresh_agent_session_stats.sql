-- refresh_agent_session_stats(): recompute agent_session_stats and return its row count.
-- CONCURRENTLY (readers are never blocked; the view has a unique index) is allowed inside a
-- transaction block and inside a function: checked on PostgreSQL 15 and 18. It needs a
-- populated view, so an unpopulated one (created WITH NO DATA) is filled the plain way.
-- The view belongs to the owner of this function; the app role has no grant on it.
CREATE OR REPLACE FUNCTION public.refresh_agent_session_stats() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_rows bigint;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'refresh_agent_session_stats: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF (SELECT ispopulated FROM pg_catalog.pg_matviews
         WHERE schemaname = 'public' AND matviewname = 'agent_session_stats') THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY public.agent_session_stats;
    ELSE
        REFRESH MATERIALIZED VIEW public.agent_session_stats;
    END IF;
    SELECT count(*) INTO v_rows FROM public.agent_session_stats;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.refresh_agent_session_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.refresh_agent_session_stats() TO witchcraft_app;
