-- Service credentials (accounts.service_credentials): the staff-issued bearer credentials of the
-- backend that calls the AI providers. It records usage and reserves quota for the user each
-- request names (header Witchcraft-User); row-level security and the SQL functions then check
-- that user, as for the user's own requests.
--
-- * Only staff read the table (the secret is never in it: token_hash is its SHA-256).
-- * The runtime role writes nothing directly: issuing and revoking go through
--   create_service_credential() and revoke_service_credential(), which only an active staff
--   member may call (in their own context, or a command's service context naming them as its
--   actor) and which write the audit row in the same transaction. A revoked credential stays
--   revoked: no function un-revokes, and nothing else may update the row.
-- * authenticate_service_credential() checks a presented credential before anyone is known.

ALTER TABLE public.service_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.service_credentials FORCE ROW LEVEL SECURITY;
GRANT SELECT ON public.service_credentials TO witchcraft_app;
CREATE POLICY service_credentials_select_admin ON public.service_credentials FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

-- The staff member issuing or revoking: the caller in their own context (an impersonating staff
-- member is a plain user there, so refused), or the actor of a service context (an operator
-- command names one). Returns their id; refuses anyone else.
CREATE OR REPLACE FUNCTION public.service_credentials_issuer() RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_staff bigint := coalesce(auth.actor_id(), auth.user_id());
    v_ok boolean;
BEGIN
    IF NOT (auth.is_service() OR (auth.is_admin() AND auth.actor_id() IS NULL)) THEN
        RAISE EXCEPTION 'only staff may issue or revoke service credentials'
            USING ERRCODE = '42501';
    END IF;
    SELECT u.is_staff AND u.is_active AND u.deleted_at IS NULL INTO v_ok
      FROM public.users u WHERE u.id = v_staff;
    IF NOT coalesce(v_ok, false) THEN
        RAISE EXCEPTION 'service credentials are issued and revoked by an active staff member'
            USING ERRCODE = '42501';
    END IF;
    RETURN v_staff;
END
$$;
REVOKE ALL ON FUNCTION public.service_credentials_issuer() FROM PUBLIC;

CREATE OR REPLACE FUNCTION public.create_service_credential(
    p_name text,
    p_token_hash text,
    p_prefix text,
    p_scopes text[],
    p_expires_at timestamptz,
    p_user_agent text DEFAULT ''
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_staff bigint := public.service_credentials_issuer();
    v_id bigint;
BEGIN
    IF p_expires_at IS NULL OR p_expires_at <= pg_catalog.now() THEN
        RAISE EXCEPTION 'a service credential must expire in the future' USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.service_credentials (name, prefix, token_hash, scopes, created_by_id,
                                            created_at, expires_at)
    VALUES (p_name, p_prefix, p_token_hash, p_scopes, v_staff, pg_catalog.now(), p_expires_at)
    RETURNING id INTO v_id;
    -- The audit row names the credential, never its secret (nor its hash).
    PERFORM public.write_audit_log(
        p_event_type => 'service_credential_created',
        p_severity => 'warning',
        p_details => pg_catalog.jsonb_build_object(
            'name', p_name, 'prefix', p_prefix, 'scopes', pg_catalog.to_jsonb(p_scopes),
            'expires_at', p_expires_at),
        p_target_type => 'service_credential',
        p_target_id => v_id::text,
        p_user_agent => p_user_agent);
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION public.create_service_credential(text, text, text, text[], timestamptz, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    public.create_service_credential(text, text, text, text[], timestamptz, text) TO witchcraft_app;

-- Returns whether the credential was revoked now (false: unknown or already revoked).
CREATE OR REPLACE FUNCTION public.revoke_service_credential(
    p_credential_id bigint,
    p_user_agent text DEFAULT ''
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_staff bigint := public.service_credentials_issuer();
    v_name text;
    v_prefix text;
BEGIN
    UPDATE public.service_credentials c
       SET revoked_at = pg_catalog.now(), revoked_by_id = v_staff
     WHERE c.id = p_credential_id AND c.revoked_at IS NULL
    RETURNING c.name, c.prefix INTO v_name, v_prefix;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM public.write_audit_log(
        p_event_type => 'service_credential_revoked',
        p_severity => 'warning',
        p_details => pg_catalog.jsonb_build_object('name', v_name, 'prefix', v_prefix),
        p_target_type => 'service_credential',
        p_target_id => p_credential_id::text,
        p_user_agent => p_user_agent);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.revoke_service_credential(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.revoke_service_credential(bigint, text) TO witchcraft_app;

-- One row (credential id, scopes) for a credential that is known, not revoked and not expired
-- (expires_at <= now refuses); no row otherwise. Like authenticate_access_token (0008): the last
-- use is written at most once a minute, skipping a row another request is writing, and "now" is
-- the statement's time.
CREATE OR REPLACE FUNCTION public.authenticate_service_credential(p_token_hash text)
RETURNS TABLE (out_credential_id bigint, out_scopes text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := pg_catalog.statement_timestamp();
    v_credential record;
BEGIN
    SELECT c.id, c.scopes, c.last_used_at INTO v_credential
      FROM public.service_credentials c
     WHERE c.token_hash = p_token_hash AND c.revoked_at IS NULL AND c.expires_at > v_now;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_credential.last_used_at IS NULL
       OR v_credential.last_used_at <= v_now - interval '1 minute' THEN
        UPDATE public.service_credentials c
           SET last_used_at = v_now
         WHERE c.id = (SELECT l.id FROM public.service_credentials l
                        WHERE l.id = v_credential.id
                          AND (l.last_used_at IS NULL
                               OR l.last_used_at <= v_now - interval '1 minute')
                          FOR UPDATE SKIP LOCKED);
    END IF;
    out_credential_id := v_credential.id;
    out_scopes := v_credential.scopes;
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION public.authenticate_service_credential(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.authenticate_service_credential(text) TO witchcraft_app;
