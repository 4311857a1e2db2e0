-- Row-level security of public.otp_static_statictoken: the policies below are all of its policies.
ALTER TABLE public.otp_static_statictoken ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.otp_static_statictoken FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS otp_static_statictoken_delete_own ON public.otp_static_statictoken;
CREATE POLICY otp_static_statictoken_delete_own ON public.otp_static_statictoken FOR DELETE
    TO witchcraft_app USING (EXISTS (
        SELECT 1 FROM public.otp_static_staticdevice d
         WHERE d.id = device_id AND d.user_id = (SELECT auth.user_id())));

DROP POLICY IF EXISTS otp_static_statictoken_insert_own ON public.otp_static_statictoken;
CREATE POLICY otp_static_statictoken_insert_own ON public.otp_static_statictoken FOR INSERT
    TO witchcraft_app WITH CHECK (EXISTS (
        SELECT 1 FROM public.otp_static_staticdevice d
         WHERE d.id = device_id AND d.user_id = (SELECT auth.user_id())));

DROP POLICY IF EXISTS otp_static_statictoken_select ON public.otp_static_statictoken;
CREATE POLICY otp_static_statictoken_select ON public.otp_static_statictoken FOR SELECT
    TO witchcraft_app USING (EXISTS (
        SELECT 1 FROM public.otp_static_staticdevice d
         WHERE d.id = device_id
           AND (d.user_id = (SELECT auth.user_id()) OR (SELECT auth.is_admin()))));
