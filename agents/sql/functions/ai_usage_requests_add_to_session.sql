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
