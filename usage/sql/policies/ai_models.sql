-- Row-level security of public.ai_models: the policies below are all of its policies.
ALTER TABLE public.ai_models ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_models FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_models_delete_admin ON public.ai_models;
CREATE POLICY ai_models_delete_admin ON public.ai_models FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_models_insert_admin ON public.ai_models;
CREATE POLICY ai_models_insert_admin ON public.ai_models FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_models_select_active ON public.ai_models;
CREATE POLICY ai_models_select_active ON public.ai_models FOR SELECT TO witchcraft_app
    USING ((is_active AND public.ai_provider_is_active(provider_id)) OR (SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_models_update_admin ON public.ai_models;
CREATE POLICY ai_models_update_admin ON public.ai_models FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
