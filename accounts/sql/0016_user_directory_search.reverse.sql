-- Undoes 0016_user_directory_search.sql (pg_trgm stays: dropping an extension another object
-- may have come to use is not a reverse migration's business).
DROP INDEX IF EXISTS public.users_full_name_trgm;
DROP INDEX IF EXISTS public.users_email_trgm;
