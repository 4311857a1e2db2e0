-- Row-level security of public.agent_messages: the policies below are all of its policies.
ALTER TABLE public.agent_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.agent_messages FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS agent_messages_insert_own ON public.agent_messages;
CREATE POLICY agent_messages_insert_own ON public.agent_messages FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()) AND EXISTS (
        SELECT 1 FROM agent_sessions s
         WHERE s.id = session_id AND s.user_id = (SELECT auth.user_id())));

DROP POLICY IF EXISTS agent_messages_select_admin ON public.agent_messages;
CREATE POLICY agent_messages_select_admin ON public.agent_messages FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_messages_select_own ON public.agent_messages;
CREATE POLICY agent_messages_select_own ON public.agent_messages FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
