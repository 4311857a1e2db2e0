-- Password reset and email verification: the service context (sign-in, recovery) issues and
-- uses the one-time tokens; confirming an address goes through a SECURITY DEFINER function,
-- since users.email_verified_at is writable by nobody else.

GRANT INSERT ON password_reset_tokens, email_verification_tokens TO witchcraft_app;
GRANT UPDATE (used_at) ON password_reset_tokens, email_verification_tokens TO witchcraft_app;
GRANT USAGE ON SEQUENCE password_reset_tokens_id_seq, email_verification_tokens_id_seq
    TO witchcraft_app;
CREATE POLICY password_reset_tokens_insert_service ON password_reset_tokens FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));
CREATE POLICY password_reset_tokens_update_service ON password_reset_tokens FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));
CREATE POLICY email_verification_tokens_insert_service ON email_verification_tokens FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));
CREATE POLICY email_verification_tokens_update_service ON email_verification_tokens FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));

-- confirm_email(p_token_hash): use a verification token. Returns the user id, or NULL when the
-- token is unknown, used, expired or for an address the account no longer has. The token is
-- the credential, so anyone may call it.
CREATE OR REPLACE FUNCTION public.confirm_email(p_token_hash text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_token public.email_verification_tokens%ROWTYPE;
    v_email text;
BEGIN
    SELECT * INTO v_token FROM public.email_verification_tokens t
     WHERE t.token_hash = p_token_hash AND t.used_at IS NULL AND t.expires_at > now()
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT u.email INTO v_email FROM public.users u WHERE u.id = v_token.user_id FOR UPDATE;
    IF v_email IS DISTINCT FROM v_token.email THEN
        RETURN NULL;
    END IF;
    UPDATE public.email_verification_tokens SET used_at = now() WHERE id = v_token.id;
    UPDATE public.users SET email_verified_at = coalesce(email_verified_at, now())
     WHERE id = v_token.user_id;
    RETURN v_token.user_id;
END
$$;
REVOKE ALL ON FUNCTION public.confirm_email(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.confirm_email(text) TO witchcraft_app;
