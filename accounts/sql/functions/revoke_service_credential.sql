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
