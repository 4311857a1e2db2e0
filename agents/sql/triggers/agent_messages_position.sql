CREATE OR REPLACE TRIGGER agent_messages_position BEFORE INSERT ON public.agent_messages
    FOR EACH ROW EXECUTE FUNCTION public.agent_messages_assign_position();
