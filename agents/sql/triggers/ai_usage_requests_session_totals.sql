CREATE OR REPLACE TRIGGER ai_usage_requests_session_totals AFTER INSERT ON public.ai_usage_requests
    FOR EACH ROW WHEN (NEW.agent_session_id IS NOT NULL)
    EXECUTE FUNCTION public.ai_usage_requests_add_to_session();
