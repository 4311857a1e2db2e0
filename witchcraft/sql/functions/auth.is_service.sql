-- Service context: a command or job (witchcraft.rls.service_context), or a session that did not
-- switch to the runtime role at all (an operator in psql, the migration role). Inside a
-- SECURITY DEFINER function current_user is the owner, but the 'role' setting still tells
-- whether the caller had switched to witchcraft_app. A session logged in as the runtime role
-- itself (it can log in: migration 0011) has no role to switch from: it is not the service by
-- that alone, and with no identity set it sees nothing.
CREATE OR REPLACE FUNCTION auth.is_service() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('app.is_service', true), '')::boolean, false)
        OR (current_setting('role') = 'none' AND session_user <> 'witchcraft_app')
$$;
REVOKE ALL ON FUNCTION auth.is_service() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.is_service() TO witchcraft_app;
