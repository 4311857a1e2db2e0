-- Undoes 0012_superuser_protection.sql.
DROP TRIGGER IF EXISTS users_guard_changes ON public.users;
DROP FUNCTION IF EXISTS public.users_guard_changes();
DROP FUNCTION IF EXISTS public.end_password_reset_links(bigint);
DROP FUNCTION IF EXISTS auth.may_change_user(bigint);
DROP FUNCTION IF EXISTS auth.has_perm(text, text);
DROP FUNCTION IF EXISTS auth.is_superuser();
