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
