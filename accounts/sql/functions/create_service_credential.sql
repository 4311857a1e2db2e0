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
REVOKE ALL ON FUNCTION public.create_service_credential(
    text, text, text, text[], timestamp with time zone, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.create_service_credential(
    text, text, text, text[], timestamp with time zone, text) TO witchcraft_app;
