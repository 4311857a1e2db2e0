CREATE OR REPLACE FUNCTION auth.require_record_for(p_user_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    IF NOT auth.may_record_for(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to reserve or record usage for user %', p_user_id
            USING ERRCODE = '42501';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION auth.require_record_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.require_record_for(bigint) TO witchcraft_app;
