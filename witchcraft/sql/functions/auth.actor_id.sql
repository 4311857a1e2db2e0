CREATE OR REPLACE FUNCTION auth.actor_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$ SELECT nullif(current_setting('app.actor_id', true), '')::bigint $$;
REVOKE ALL ON FUNCTION auth.actor_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.actor_id() TO witchcraft_app;
