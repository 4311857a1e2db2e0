-- Row-level security for the signed-in devices (user_sessions) and the second factor
-- (django-otp's TOTP devices, static recovery-code devices and their codes).

-- user_sessions: a session is read by the middleware before the role switch (as the owner
-- role); inside a request the runtime role creates (sign-in), saves and ends its own sessions.
-- An anonymous session carries no user.
ALTER TABLE user_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_sessions FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, DELETE ON user_sessions TO witchcraft_app;
GRANT UPDATE (session_data, expire_date, user_id, last_seen_at, ip, user_agent)
    ON user_sessions TO witchcraft_app;
CREATE POLICY user_sessions_select_own ON user_sessions FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE POLICY user_sessions_select_admin ON user_sessions FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
CREATE POLICY user_sessions_insert_own ON user_sessions FOR INSERT TO witchcraft_app
    WITH CHECK (user_id IS NULL OR user_id = (SELECT auth.user_id()) OR (SELECT auth.is_admin()));
CREATE POLICY user_sessions_update_own ON user_sessions FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
CREATE POLICY user_sessions_update_admin ON user_sessions FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
CREATE POLICY user_sessions_delete_own ON user_sessions FOR DELETE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE POLICY user_sessions_delete_admin ON user_sessions FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

-- TOTP and static (recovery code) devices: the owner manages them; admins read.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['otp_totp_totpdevice', 'otp_static_staticdevice']
    LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO witchcraft_app', t);
        EXECUTE format('GRANT USAGE ON SEQUENCE public.%I TO witchcraft_app', t || '_id_seq');
        EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO witchcraft_app'
                       ' USING (user_id = (SELECT auth.user_id()) OR (SELECT auth.is_admin()))',
                       t || '_select', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR INSERT TO witchcraft_app'
                       ' WITH CHECK (user_id = (SELECT auth.user_id()))', t || '_insert_own', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR UPDATE TO witchcraft_app'
                       ' USING (user_id = (SELECT auth.user_id()))'
                       ' WITH CHECK (user_id = (SELECT auth.user_id()))', t || '_update_own', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR DELETE TO witchcraft_app'
                       ' USING (user_id = (SELECT auth.user_id()) OR (SELECT auth.is_admin()))',
                       t || '_delete', t);
    END LOOP;
END
$$;

ALTER TABLE otp_static_statictoken ENABLE ROW LEVEL SECURITY;
ALTER TABLE otp_static_statictoken FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, DELETE ON otp_static_statictoken TO witchcraft_app;
GRANT USAGE ON SEQUENCE otp_static_statictoken_id_seq TO witchcraft_app;
CREATE POLICY otp_static_statictoken_select ON otp_static_statictoken FOR SELECT
    TO witchcraft_app USING (EXISTS (
        SELECT 1 FROM public.otp_static_staticdevice d
         WHERE d.id = device_id
           AND (d.user_id = (SELECT auth.user_id()) OR (SELECT auth.is_admin()))));
CREATE POLICY otp_static_statictoken_insert_own ON otp_static_statictoken FOR INSERT
    TO witchcraft_app WITH CHECK (EXISTS (
        SELECT 1 FROM public.otp_static_staticdevice d
         WHERE d.id = device_id AND d.user_id = (SELECT auth.user_id())));
CREATE POLICY otp_static_statictoken_delete_own ON otp_static_statictoken FOR DELETE
    TO witchcraft_app USING (EXISTS (
        SELECT 1 FROM public.otp_static_staticdevice d
         WHERE d.id = device_id AND d.user_id = (SELECT auth.user_id())));

-- Sign-in failures per client IP (the 20-per-IP lockout), next to the per-account index.
CREATE INDEX IF NOT EXISTS audit_logs_failed_logins_ip ON audit_logs (ip, created_at DESC)
    WHERE event_type = 'login_failed';
