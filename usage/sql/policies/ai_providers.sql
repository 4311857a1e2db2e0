-- Row-level security of public.ai_providers: the policies below are all of its policies.
ALTER TABLE public.ai_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_providers FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_providers_delete_admin ON public.ai_providers;
CREATE POLICY ai_providers_delete_admin ON public.ai_providers FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_providers_insert_admin ON public.ai_providers;
CREATE POLICY ai_providers_insert_admin ON public.ai_providers FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_providers_select_active ON public.ai_providers;
CREATE POLICY ai_providers_select_active ON public.ai_providers FOR SELECT TO witchcraft_app
    USING (is_active OR (SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_providers_update_admin ON public.ai_providers;
CREATE POLICY ai_providers_update_admin ON public.ai_providers FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
