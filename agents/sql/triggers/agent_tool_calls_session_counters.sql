CREATE OR REPLACE TRIGGER agent_tool_calls_session_counters AFTER INSERT OR DELETE
    ON public.agent_tool_calls
    FOR EACH ROW EXECUTE FUNCTION public.agent_tool_calls_count();
