-- Who may change an account, checked by the database whatever the path (the admin's forms, a
-- service, raw SQL as the runtime role), and the end of reset links on a password change.
--
-- 1. auth.is_superuser(): the request's identity is an active superuser acting as themself (not
--    impersonated), or the service context. SECURITY DEFINER: it reads the caller's own users
--    row, so the session's word (app.is_admin) is not enough on its own.
-- 2. auth.has_perm(app_label, codename): the caller is active staff holding that Django
--    permission (directly or through a group); a superuser holds them all.
-- 3. auth.may_change_user(user_id): the user themself, a superuser (or the service context), or
--    staff holding accounts.change_user -- but a superuser's account only the superuser themself
--    or another superuser may change.
-- 4. users_guard_changes, a trigger on users, per column:
--    * is_staff, is_superuser: a superuser only (also on INSERT), whoever calls set_user_staff;
--    * any other column of someone else's row, or of a superuser's row: auth.may_change_user();
--      email_verified_at excepted, which confirm_email() sets for whoever holds the link (the
--      token is the credential, and it only confirms the address the account already has).
--    The column grants of 0002 still decide what the runtime role may write at all (password,
--    full_name, last_login); is_active, email, deleted_at change only in SECURITY DEFINER
--    functions, which the trigger checks too.
-- 5. end_password_reset_links(user_id): a password change ends every outstanding reset link
--    (the runtime role cannot update password_reset_tokens outside the service context).
CREATE OR REPLACE FUNCTION auth.is_superuser() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT auth.is_service() OR (
        coalesce(nullif(pg_catalog.current_setting('app.is_admin', true), '')::boolean, false)
        AND (auth.actor_id() IS NULL OR auth.actor_id() IS NOT DISTINCT FROM auth.user_id())
        AND EXISTS (SELECT 1 FROM public.users u
                     WHERE u.id = auth.user_id() AND u.is_superuser AND u.is_staff
                       AND u.is_active AND u.deleted_at IS NULL))
$$;
REVOKE ALL ON FUNCTION auth.is_superuser() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.is_superuser() TO witchcraft_app;
