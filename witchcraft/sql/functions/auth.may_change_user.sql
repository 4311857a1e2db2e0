CREATE OR REPLACE FUNCTION auth.may_change_user(p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT p_user_id IS NOT NULL AND (
        auth.is_superuser()
        OR auth.user_id() IS NOT DISTINCT FROM p_user_id
        OR (auth.has_perm('accounts', 'change_user')
            AND NOT EXISTS (SELECT 1 FROM public.users u
                             WHERE u.id = p_user_id AND u.is_superuser)))
$$;
REVOKE ALL ON FUNCTION auth.may_change_user(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.may_change_user(bigint) TO witchcraft_app;
