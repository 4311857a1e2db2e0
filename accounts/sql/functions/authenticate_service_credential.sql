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
