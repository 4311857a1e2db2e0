-- 4. A revoked access token stays revoked (a policy cannot compare old and new values).
CREATE OR REPLACE FUNCTION public.access_tokens_keep_revoked() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'a revoked access token cannot be restored' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.access_tokens_keep_revoked() FROM PUBLIC;
