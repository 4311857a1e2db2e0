-- The runtime role logs in: a distributed PostgreSQL (Citus) opens its connections to the nodes
-- as the current role after SET LOCAL ROLE, so a role that cannot log in is refused there. It
-- stays unprivileged (no superuser, no BYPASSRLS, owns nothing); who may log in as it, from
-- where and with which secret is pg_hba.conf's and the password's business (README, "Security
-- model"). With Citus, the identity's SET LOCAL commands are sent on to the nodes.
ALTER ROLE witchcraft_app LOGIN;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        EXECUTE 'ALTER ROLE witchcraft_app SET citus.propagate_set_commands = ''local''';
    END IF;
END
$$;
