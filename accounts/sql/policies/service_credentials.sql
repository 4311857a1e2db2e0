-- Row-level security of public.service_credentials: the policies below are all of its policies.
ALTER TABLE public.service_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.service_credentials FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS service_credentials_select_admin ON public.service_credentials;
CREATE POLICY service_credentials_select_admin ON public.service_credentials FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));
