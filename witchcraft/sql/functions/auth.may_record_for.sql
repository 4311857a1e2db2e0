CREATE OR REPLACE FUNCTION auth.may_record_for(p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT auth.is_service()
        OR (p_user_id IS NOT NULL AND auth.user_id() IS NOT DISTINCT FROM p_user_id
            AND coalesce(nullif(current_setting('app.may_record', true), '')::boolean, false))
$$;
REVOKE ALL ON FUNCTION auth.may_record_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.may_record_for(bigint) TO witchcraft_app;
