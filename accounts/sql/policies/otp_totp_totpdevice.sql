-- Row-level security of public.otp_totp_totpdevice: the policies below are all of its policies.
ALTER TABLE public.otp_totp_totpdevice ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.otp_totp_totpdevice FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS otp_totp_totpdevice_delete ON public.otp_totp_totpdevice;
CREATE POLICY otp_totp_totpdevice_delete ON public.otp_totp_totpdevice
    FOR DELETE TO witchcraft_app
    USING (((user_id = ( SELECT auth.user_id() AS user_id)) OR ( SELECT auth.is_admin() AS is_admin)));

DROP POLICY IF EXISTS otp_totp_totpdevice_insert_own ON public.otp_totp_totpdevice;
CREATE POLICY otp_totp_totpdevice_insert_own ON public.otp_totp_totpdevice
    FOR INSERT TO witchcraft_app
    WITH CHECK ((user_id = ( SELECT auth.user_id() AS user_id)));

DROP POLICY IF EXISTS otp_totp_totpdevice_select ON public.otp_totp_totpdevice;
CREATE POLICY otp_totp_totpdevice_select ON public.otp_totp_totpdevice
    FOR SELECT TO witchcraft_app
    USING (((user_id = ( SELECT auth.user_id() AS user_id)) OR ( SELECT auth.is_admin() AS is_admin)));

DROP POLICY IF EXISTS otp_totp_totpdevice_update_own ON public.otp_totp_totpdevice;
CREATE POLICY otp_totp_totpdevice_update_own ON public.otp_totp_totpdevice
    FOR UPDATE TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)))
    WITH CHECK ((user_id = ( SELECT auth.user_id() AS user_id)));
