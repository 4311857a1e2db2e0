-- ai_usage_batch_is_text(value, max): is the value absent, JSON null, or a string of at most max
-- characters?
CREATE OR REPLACE FUNCTION public.ai_usage_batch_is_text(p_value jsonb, p_max integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_value IS NULL OR jsonb_typeof(p_value) = 'null'
        OR (jsonb_typeof(p_value) = 'string' AND length(p_value #>> '{}') <= p_max)
$$;
REVOKE ALL ON FUNCTION public.ai_usage_batch_is_text(jsonb, integer) FROM PUBLIC;
