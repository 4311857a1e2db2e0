-- Row-level security of public.agent_feedback: the policies below are all of its policies.
ALTER TABLE public.agent_feedback ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.agent_feedback FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS agent_feedback_delete_own ON public.agent_feedback;
CREATE POLICY agent_feedback_delete_own ON public.agent_feedback FOR DELETE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_feedback_insert_own ON public.agent_feedback;
-- Feedback on a message must name a message of the same session.
CREATE POLICY agent_feedback_insert_own ON public.agent_feedback FOR INSERT TO witchcraft_app
    WITH CHECK (
    user_id = (SELECT auth.user_id())
    AND EXISTS (SELECT 1 FROM public.agent_sessions s
                 WHERE s.id = agent_feedback.session_id AND s.user_id = (SELECT auth.user_id()))
    AND (agent_feedback.message_id IS NULL OR EXISTS (
            SELECT 1 FROM public.agent_messages m
             WHERE m.id = agent_feedback.message_id
               AND m.session_id = agent_feedback.session_id)));

DROP POLICY IF EXISTS agent_feedback_select_admin ON public.agent_feedback;
CREATE POLICY agent_feedback_select_admin ON public.agent_feedback FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_feedback_select_own ON public.agent_feedback;
CREATE POLICY agent_feedback_select_own ON public.agent_feedback FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_feedback_update_own ON public.agent_feedback;
CREATE POLICY agent_feedback_update_own ON public.agent_feedback FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
