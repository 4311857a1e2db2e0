-- Admins (staff) see everything; so does the service context.
CREATE OR REPLACE FUNCTION auth.is_admin() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('app.is_admin', true), '')::boolean, false)
        OR coalesce(nullif(current_setting('app.is_service', true), '')::boolean, false)
$$;
REVOKE ALL ON FUNCTION auth.is_admin() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.is_admin() TO witchcraft_app;
