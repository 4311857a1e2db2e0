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
