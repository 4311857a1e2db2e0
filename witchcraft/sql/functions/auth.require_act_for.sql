CREATE OR REPLACE FUNCTION auth.require_act_for(p_user_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    IF NOT auth.may_act_for(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to act for user %', p_user_id USING ERRCODE = '42501';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION auth.require_act_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.require_act_for(bigint) TO witchcraft_app;
