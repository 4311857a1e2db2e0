-- Row-level security of public.ai_usage_request_keys: the policies below are all of its policies.
ALTER TABLE public.ai_usage_request_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_request_keys FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_request_keys_select_admin ON public.ai_usage_request_keys;
CREATE POLICY ai_usage_request_keys_select_admin ON public.ai_usage_request_keys
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS ai_usage_request_keys_select_own ON public.ai_usage_request_keys;
CREATE POLICY ai_usage_request_keys_select_own ON public.ai_usage_request_keys
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
