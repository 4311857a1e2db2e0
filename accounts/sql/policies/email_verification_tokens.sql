-- Row-level security of public.email_verification_tokens: the policies below are all of its policies.
ALTER TABLE public.email_verification_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.email_verification_tokens FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS email_verification_tokens_insert_service ON public.email_verification_tokens;
CREATE POLICY email_verification_tokens_insert_service ON public.email_verification_tokens FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));

DROP POLICY IF EXISTS email_verification_tokens_select_admin ON public.email_verification_tokens;
CREATE POLICY email_verification_tokens_select_admin ON public.email_verification_tokens FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS email_verification_tokens_select_own ON public.email_verification_tokens;
CREATE POLICY email_verification_tokens_select_own ON public.email_verification_tokens FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS email_verification_tokens_update_service ON public.email_verification_tokens;
CREATE POLICY email_verification_tokens_update_service ON public.email_verification_tokens FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));
