CREATE OR REPLACE FUNCTION public.get_agent_session_stats(p_session_ids bigint[] DEFAULT NULL)
RETURNS SETOF public.agent_session_stats
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT st.* FROM public.agent_session_stats st
     WHERE (auth.is_admin() OR (auth.user_id() IS NOT NULL AND st.user_id = auth.user_id()))
       AND (p_session_ids IS NULL OR st.session_id = ANY (p_session_ids))
$$;
REVOKE ALL ON FUNCTION public.get_agent_session_stats(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_agent_session_stats(bigint[]) TO witchcraft_app;
