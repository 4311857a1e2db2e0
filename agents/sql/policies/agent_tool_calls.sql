-- Row-level security of public.agent_tool_calls: the policies below are all of its policies.
ALTER TABLE public.agent_tool_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.agent_tool_calls FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS agent_tool_calls_insert_own ON public.agent_tool_calls;
-- A tool call of a message must name a message of the same session.
CREATE POLICY agent_tool_calls_insert_own ON public.agent_tool_calls FOR INSERT TO witchcraft_app
    WITH CHECK (
    user_id = (SELECT auth.user_id())
    AND EXISTS (SELECT 1 FROM public.agent_sessions s
                 WHERE s.id = agent_tool_calls.session_id AND s.user_id = (SELECT auth.user_id()))
    AND (agent_tool_calls.message_id IS NULL OR EXISTS (
            SELECT 1 FROM public.agent_messages m
             WHERE m.id = agent_tool_calls.message_id
               AND m.session_id = agent_tool_calls.session_id)));

DROP POLICY IF EXISTS agent_tool_calls_select_admin ON public.agent_tool_calls;
CREATE POLICY agent_tool_calls_select_admin ON public.agent_tool_calls FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_tool_calls_select_own ON public.agent_tool_calls;
CREATE POLICY agent_tool_calls_select_own ON public.agent_tool_calls FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_tool_calls_update_own ON public.agent_tool_calls;
CREATE POLICY agent_tool_calls_update_own ON public.agent_tool_calls FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
