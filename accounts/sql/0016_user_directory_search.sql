-- The staff user directory's search (witchcraft/dashboard/directory.py): part of an email or
-- of a name, found through trigram indexes (pg_trgm; trusted from PostgreSQL 13, so the
-- database owner may create it). Emails are stored lower-case (users_email_normalized), so the
-- email index is on the column itself; names are matched lower-cased. The indexes are used by
-- users_search() (accounts/sql/functions/users_search.sql): LIKE is not leakproof, so under the
-- runtime role's row-level security the planner may not use them in a plain query.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE INDEX IF NOT EXISTS users_email_trgm ON public.users USING gin (email public.gin_trgm_ops);
CREATE INDEX IF NOT EXISTS users_full_name_trgm
    ON public.users USING gin (lower(full_name) public.gin_trgm_ops);
