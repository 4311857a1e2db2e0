-- Row-level security of public.access_tokens: the policies below are all of its policies.
ALTER TABLE public.access_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.access_tokens FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS access_tokens_insert_own ON public.access_tokens;
CREATE POLICY access_tokens_insert_own ON public.access_tokens FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS access_tokens_select_admin ON public.access_tokens;
CREATE POLICY access_tokens_select_admin ON public.access_tokens FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS access_tokens_select_own ON public.access_tokens;
CREATE POLICY access_tokens_select_own ON public.access_tokens FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS access_tokens_update_admin ON public.access_tokens;
CREATE POLICY access_tokens_update_admin ON public.access_tokens FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS access_tokens_update_own ON public.access_tokens;
CREATE POLICY access_tokens_update_own ON public.access_tokens FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
