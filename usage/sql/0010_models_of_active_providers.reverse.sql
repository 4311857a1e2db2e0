DROP POLICY IF EXISTS ai_models_select_active ON public.ai_models;
CREATE POLICY ai_models_select_active ON public.ai_models FOR SELECT TO witchcraft_app
    USING (is_active OR (SELECT auth.is_admin()));
DROP FUNCTION IF EXISTS public.ai_provider_is_active(bigint);
