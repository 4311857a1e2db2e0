-- Row-level security hardening, from the RLS test matrix and lints.

-- 1. Temporary tables must not steer SECURITY DEFINER functions: the caller's temporary schema
--    is searched first unless pg_temp comes last. Nobody but owners needs temporary tables here,
--    and every SECURITY DEFINER function gets pg_temp last in its search_path.
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname IN ('public', 'auth') AND p.prosecdef
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, pg_temp', fn);
    END LOOP;
END
$$;

-- 2. A row must not point at another user's data.
ALTER POLICY agent_feedback_insert_own ON public.agent_feedback WITH CHECK (
    user_id = (SELECT auth.user_id())
    AND EXISTS (SELECT 1 FROM public.agent_sessions s
                 WHERE s.id = agent_feedback.session_id AND s.user_id = (SELECT auth.user_id()))
    AND (agent_feedback.message_id IS NULL OR EXISTS (
            SELECT 1 FROM public.agent_messages m
             WHERE m.id = agent_feedback.message_id
               AND m.session_id = agent_feedback.session_id)));
ALTER POLICY agent_tool_calls_insert_own ON public.agent_tool_calls WITH CHECK (
    user_id = (SELECT auth.user_id())
    AND EXISTS (SELECT 1 FROM public.agent_sessions s
                 WHERE s.id = agent_tool_calls.session_id AND s.user_id = (SELECT auth.user_id()))
    AND (agent_tool_calls.message_id IS NULL OR EXISTS (
            SELECT 1 FROM public.agent_messages m
             WHERE m.id = agent_tool_calls.message_id
               AND m.session_id = agent_tool_calls.session_id)));
ALTER POLICY usage_alerts_update_own ON public.usage_alerts
    USING (user_id = (SELECT auth.user_id()))
    WITH CHECK (user_id = (SELECT auth.user_id())
                AND (acknowledged_by_id IS NULL
                     OR acknowledged_by_id = (SELECT auth.user_id())));

-- 3. The runtime role creates sessions through the ORM, which writes ended_at (NULL) too; the
--    CHECK agent_sessions_active_not_ended keeps a new active session from being "ended".
GRANT INSERT (ended_at) ON public.agent_sessions TO witchcraft_app;

-- 4. A revoked access token stays revoked (a policy cannot compare old and new values).
CREATE OR REPLACE FUNCTION public.access_tokens_keep_revoked() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'a revoked access token cannot be restored' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.access_tokens_keep_revoked() FROM PUBLIC;
CREATE TRIGGER access_tokens_keep_revoked BEFORE UPDATE OF revoked_at ON public.access_tokens
    FOR EACH ROW EXECUTE FUNCTION public.access_tokens_keep_revoked();
