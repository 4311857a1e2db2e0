-- Row-level security of public.otp_static_staticdevice: the policies below are all of its policies.
ALTER TABLE public.otp_static_staticdevice ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.otp_static_staticdevice FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS otp_static_staticdevice_delete ON public.otp_static_staticdevice;
CREATE POLICY otp_static_staticdevice_delete ON public.otp_static_staticdevice
    FOR DELETE TO witchcraft_app
    USING (((user_id = ( SELECT auth.user_id() AS user_id)) OR ( SELECT auth.is_admin() AS is_admin)));

DROP POLICY IF EXISTS otp_static_staticdevice_insert_own ON public.otp_static_staticdevice;
CREATE POLICY otp_static_staticdevice_insert_own ON public.otp_static_staticdevice
    FOR INSERT TO witchcraft_app
    WITH CHECK ((user_id = ( SELECT auth.user_id() AS user_id)));

DROP POLICY IF EXISTS otp_static_staticdevice_select ON public.otp_static_staticdevice;
CREATE POLICY otp_static_staticdevice_select ON public.otp_static_staticdevice
    FOR SELECT TO witchcraft_app
    USING (((user_id = ( SELECT auth.user_id() AS user_id)) OR ( SELECT auth.is_admin() AS is_admin)));

DROP POLICY IF EXISTS otp_static_staticdevice_update_own ON public.otp_static_staticdevice;
CREATE POLICY otp_static_staticdevice_update_own ON public.otp_static_staticdevice
    FOR UPDATE TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)))
    WITH CHECK ((user_id = ( SELECT auth.user_id() AS user_id)));
