-- The request's identity, set per transaction by witchcraft/rls.py. A reused connection returns
-- '' (not NULL) for a setting cleared earlier, hence nullif.
CREATE OR REPLACE FUNCTION auth.user_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$ SELECT nullif(current_setting('app.user_id', true), '')::bigint $$;
REVOKE ALL ON FUNCTION auth.user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.user_id() TO witchcraft_app;
