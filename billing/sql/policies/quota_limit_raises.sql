-- Row-level security of public.quota_limit_raises: the policies below are all of its policies.
-- Written only by raise_quota_limit (SECURITY DEFINER); staff read every raise, a user theirs.
ALTER TABLE public.quota_limit_raises ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.quota_limit_raises FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS quota_limit_raises_select_admin ON public.quota_limit_raises;
CREATE POLICY quota_limit_raises_select_admin ON public.quota_limit_raises FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS quota_limit_raises_select_own ON public.quota_limit_raises;
CREATE POLICY quota_limit_raises_select_own ON public.quota_limit_raises FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
