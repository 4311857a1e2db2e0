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

CREATE OR REPLACE FUNCTION public.agent_messages_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE public.agent_sessions AS s
           SET message_count = s.message_count + 1,
               last_activity_at = greatest(s.last_activity_at, NEW.created_at)
         WHERE s.id = NEW.session_id;
        RETURN NEW;
    END IF;
    -- DELETE: the statement's deletions are already invisible here, so the latest remaining
    -- message is a plain max().
    UPDATE public.agent_sessions AS s
       SET message_count = s.message_count - 1,
           last_activity_at = greatest(s.started_at,
                                       (SELECT max(m.created_at) FROM public.agent_messages m
                                         WHERE m.session_id = OLD.session_id))
     WHERE s.id = OLD.session_id;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION public.agent_messages_count() FROM PUBLIC;

CREATE OR REPLACE FUNCTION public.agent_tool_calls_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE public.agent_sessions AS s SET tool_call_count = s.tool_call_count + 1
         WHERE s.id = NEW.session_id;
        RETURN NEW;
    END IF;
    UPDATE public.agent_sessions AS s SET tool_call_count = s.tool_call_count - 1
     WHERE s.id = OLD.session_id;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION public.agent_tool_calls_count() FROM PUBLIC;

CREATE OR REPLACE FUNCTION public.ai_usage_requests_add_to_session() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    UPDATE public.agent_sessions AS s
       SET input_tokens = s.input_tokens + NEW.input_tokens,
           output_tokens = s.output_tokens + NEW.output_tokens,
           total_tokens = s.total_tokens + NEW.total_tokens,
           total_cost = s.total_cost + NEW.cost
     WHERE s.id = NEW.agent_session_id;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.ai_usage_requests_add_to_session() FROM PUBLIC;

DROP TRIGGER IF EXISTS agent_messages_position ON public.agent_messages;
CREATE TRIGGER agent_messages_position BEFORE INSERT ON public.agent_messages
    FOR EACH ROW EXECUTE FUNCTION public.agent_messages_assign_position();

DROP TRIGGER IF EXISTS agent_messages_session_counters ON public.agent_messages;
CREATE TRIGGER agent_messages_session_counters AFTER INSERT OR DELETE ON public.agent_messages
    FOR EACH ROW EXECUTE FUNCTION public.agent_messages_count();

DROP TRIGGER IF EXISTS agent_tool_calls_session_counters ON public.agent_tool_calls;
CREATE TRIGGER agent_tool_calls_session_counters AFTER INSERT OR DELETE
    ON public.agent_tool_calls
    FOR EACH ROW EXECUTE FUNCTION public.agent_tool_calls_count();

-- A row trigger on the partitioned table is cloned onto every partition, present and future
-- (ATTACH PARTITION adds it).
DROP TRIGGER IF EXISTS ai_usage_requests_session_totals ON public.ai_usage_requests;
CREATE TRIGGER ai_usage_requests_session_totals AFTER INSERT ON public.ai_usage_requests
    FOR EACH ROW WHEN (NEW.agent_session_id IS NOT NULL)
    EXECUTE FUNCTION public.ai_usage_requests_add_to_session();

-- Bring sessions that existed before these triggers in line with their children.
UPDATE public.agent_sessions AS s
   SET message_count = coalesce(m.n, 0),
       last_activity_at = greatest(s.started_at, m.latest),
       tool_call_count = coalesce(t.n, 0),
       input_tokens = coalesce(u.input_tokens, 0),
       output_tokens = coalesce(u.output_tokens, 0),
       total_tokens = coalesce(u.total_tokens, 0),
       total_cost = coalesce(u.cost, 0)
  FROM public.agent_sessions s0
  LEFT JOIN (SELECT session_id, count(*) AS n, max(created_at) AS latest
               FROM public.agent_messages GROUP BY session_id) m ON m.session_id = s0.id
  LEFT JOIN (SELECT session_id, count(*) AS n
               FROM public.agent_tool_calls GROUP BY session_id) t ON t.session_id = s0.id
  LEFT JOIN (SELECT agent_session_id, sum(input_tokens) AS input_tokens,
                    sum(output_tokens) AS output_tokens, sum(total_tokens) AS total_tokens,
                    sum(cost) AS cost
               FROM public.ai_usage_requests
              WHERE agent_session_id IS NOT NULL
              GROUP BY agent_session_id) u ON u.agent_session_id = s0.id
 WHERE s.id = s0.id;
