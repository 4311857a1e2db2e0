CREATE OR REPLACE TRIGGER agent_messages_session_counters AFTER INSERT OR DELETE ON public.agent_messages
    FOR EACH ROW EXECUTE FUNCTION public.agent_messages_count();
