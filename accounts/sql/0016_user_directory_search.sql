-- The staff user directory's search (witchcraft/dashboard/directory.py): part of an email or
-- of a name, found through trigram indexes (pg_trgm; trusted from PostgreSQL 13, so the
-- database owner may create it). Emails are stored lower-case (users_email_normalized), so the
-- email index is on the column itself; names are matched lower-cased. The indexes are used by
-- users_search() (accounts/sql/functions/users_search.sql): LIKE is not leakproof, so under the
-- runtime role's row-level security the planner may not use them in a plain query.
-- pg_trgm ships with PostgreSQL's contrib, which a server may lack (the embedded development
-- server's build has no contrib): there the indexes are skipped and users_search() still
-- answers the same, by a sequential scan of users.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
        CREATE INDEX IF NOT EXISTS users_email_trgm
            ON public.users USING gin (email public.gin_trgm_ops);
        CREATE INDEX IF NOT EXISTS users_full_name_trgm
            ON public.users USING gin (lower(full_name) public.gin_trgm_ops);
    ELSE
        RAISE NOTICE 'pg_trgm is not available: the user search runs without its indexes';
    END IF;
END
$$;
