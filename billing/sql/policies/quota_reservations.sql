-- Row-level security of public.quota_reservations: the policies below are all of its policies.
ALTER TABLE public.quota_reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.quota_reservations FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS quota_reservations_select_admin ON public.quota_reservations;
CREATE POLICY quota_reservations_select_admin ON public.quota_reservations FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS quota_reservations_select_own ON public.quota_reservations;
CREATE POLICY quota_reservations_select_own ON public.quota_reservations FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
