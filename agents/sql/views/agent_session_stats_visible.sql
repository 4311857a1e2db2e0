-- agent_session_stats_visible: the rows of the materialized view the caller may see, for the
-- runtime role (which has no grant on the materialized view itself). security_invoker, so the
-- caller's identity reaches get_agent_session_stats(), which filters by it.
CREATE OR REPLACE VIEW public.agent_session_stats_visible WITH (security_invoker = true) AS
    SELECT * FROM public.get_agent_session_stats();
GRANT SELECT ON public.agent_session_stats_visible TO witchcraft_app;
