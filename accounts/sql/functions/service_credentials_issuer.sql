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
