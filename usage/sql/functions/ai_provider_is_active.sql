-- The public catalog shows a model only when it and its provider are active (the seed: "active
-- models of active providers"); staff see every row. The provider's state is read through
-- ai_provider_is_active(), an invoker function: the runtime role sees active providers only
-- (their own policy), staff all of them, which the admin branch covers anyway.
CREATE OR REPLACE FUNCTION public.ai_provider_is_active(p_provider_id bigint) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM public.ai_providers p
                    WHERE p.id = p_provider_id AND p.is_active)
$$;
REVOKE ALL ON FUNCTION public.ai_provider_is_active(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.ai_provider_is_active(bigint) TO witchcraft_app;
