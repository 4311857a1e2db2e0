-- Row-level security of public.password_reset_tokens: the policies below are all of its policies.
ALTER TABLE public.password_reset_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.password_reset_tokens FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS password_reset_tokens_insert_service ON public.password_reset_tokens;
CREATE POLICY password_reset_tokens_insert_service ON public.password_reset_tokens FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));

DROP POLICY IF EXISTS password_reset_tokens_select_admin ON public.password_reset_tokens;
CREATE POLICY password_reset_tokens_select_admin ON public.password_reset_tokens FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS password_reset_tokens_update_service ON public.password_reset_tokens;
CREATE POLICY password_reset_tokens_update_service ON public.password_reset_tokens FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));
