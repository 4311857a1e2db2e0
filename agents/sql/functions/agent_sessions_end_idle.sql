-- agent_sessions_end_idle(): the agents step of daily_maintenance. Ends the agent sessions
-- without activity for 24 hours and returns how many it ended (daily_maintenance's
-- sessions_ended). Idempotent: an ended session is no longer active, so a second run ends none.
-- Service context only; not granted to the runtime role (daily_maintenance reaches it as the
-- owner).
CREATE OR REPLACE FUNCTION public.agent_sessions_end_idle() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_sessions integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'agent_sessions_end_idle: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    -- ended_at = last_activity_at: the session ended when it was last used, not when we noticed
    -- (and agent_sessions_active_not_ended wants is_active false once ended_at is set).
    UPDATE public.agent_sessions
       SET is_active = false, ended_at = last_activity_at
     WHERE is_active AND last_activity_at < now() - interval '24 hours';
    GET DIAGNOSTICS v_sessions = ROW_COUNT;
    RETURN v_sessions;
END
$$;
REVOKE ALL ON FUNCTION public.agent_sessions_end_idle() FROM PUBLIC;
