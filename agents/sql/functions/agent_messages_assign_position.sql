-- Agent session counters, kept by triggers so they always equal a recount of the children
-- (seed: "Agent Session Flow", step 8):
--   message_count      number of agent_messages of the session
--   tool_call_count    number of agent_tool_calls of the session
--   input_tokens, output_tokens, total_tokens, total_cost
--                      sums over the ai_usage_requests rows of the session (the metered truth;
--                      the per-message token columns are informative and not summed, or a
--                      message with its usage row would count twice)
--   last_activity_at   greatest(started_at, latest message created_at)
-- The runtime role cannot write these columns (agents/sql/0002_rls.sql grants only the
-- descriptive ones): the trigger functions are SECURITY DEFINER with a pinned search_path.
-- session_id of a message or tool call is not updatable by the runtime role, so only INSERT and
-- DELETE are tracked. Usage rows are never deleted by the app and are moved between partitions
-- by ensure_usage_partitions (a DELETE plus an INSERT into a not yet attached table): only their
-- INSERT is tracked, so the move does not disturb the totals.
--
-- Lock order: these triggers lock the session row. record_ai_usage has already locked the
-- quota row by the time its usage row reaches the session, so quota -> session everywhere.
-- Positions: a message inserted without one (NULL or 0) gets the next free position of its
-- session. The session row is locked first, so concurrent inserts into one session serialise
-- instead of colliding on agent_messages_session_position_key.
CREATE OR REPLACE FUNCTION public.agent_messages_assign_position() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NEW.position IS NULL OR NEW.position = 0 THEN
        PERFORM 1 FROM public.agent_sessions s WHERE s.id = NEW.session_id FOR UPDATE;
        SELECT coalesce(max(m.position), 0) + 1 INTO NEW.position
          FROM public.agent_messages m
         WHERE m.session_id = NEW.session_id;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.agent_messages_assign_position() FROM PUBLIC;
