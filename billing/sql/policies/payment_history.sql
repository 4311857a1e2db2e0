-- Row-level security of public.payment_history: the policies below are all of its policies.
ALTER TABLE public.payment_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.payment_history FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS payment_history_select_admin ON public.payment_history;
CREATE POLICY payment_history_select_admin ON public.payment_history
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS payment_history_select_own ON public.payment_history;
CREATE POLICY payment_history_select_own ON public.payment_history
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
