-- May the caller act for p_user_id? The user themself, an admin, or the service context.
-- Written so that an anonymous caller (user_id NULL) never passes by a NULL comparison.
CREATE OR REPLACE FUNCTION auth.may_act_for(p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT auth.is_service() OR auth.is_admin()
        OR (p_user_id IS NOT NULL AND auth.user_id() IS NOT DISTINCT FROM p_user_id)
$$;
REVOKE ALL ON FUNCTION auth.may_act_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.may_act_for(bigint) TO witchcraft_app;
