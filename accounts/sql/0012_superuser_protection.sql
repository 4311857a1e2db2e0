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

CREATE OR REPLACE FUNCTION auth.has_perm(p_app_label text, p_codename text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT auth.is_superuser() OR (
        coalesce(nullif(pg_catalog.current_setting('app.is_admin', true), '')::boolean, false)
        AND auth.actor_id() IS NULL
        AND EXISTS (
            SELECT 1
              FROM public.users u
             CROSS JOIN public.auth_permission p
              JOIN public.django_content_type ct ON ct.id = p.content_type_id
             WHERE u.id = auth.user_id() AND u.is_staff AND u.is_active AND u.deleted_at IS NULL
               AND ct.app_label = p_app_label AND p.codename = p_codename
               AND (EXISTS (SELECT 1 FROM public.users_user_permissions up
                             WHERE up.user_id = u.id AND up.permission_id = p.id)
                    OR EXISTS (SELECT 1 FROM public.users_groups ug
                                 JOIN public.auth_group_permissions gp
                                   ON gp.group_id = ug.group_id
                                WHERE ug.user_id = u.id AND gp.permission_id = p.id))))
$$;
REVOKE ALL ON FUNCTION auth.has_perm(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.has_perm(text, text) TO witchcraft_app;

CREATE OR REPLACE FUNCTION auth.may_change_user(p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT p_user_id IS NOT NULL AND (
        auth.is_superuser()
        OR auth.user_id() IS NOT DISTINCT FROM p_user_id
        OR (auth.has_perm('accounts', 'change_user')
            AND NOT EXISTS (SELECT 1 FROM public.users u
                             WHERE u.id = p_user_id AND u.is_superuser)))
$$;
REVOKE ALL ON FUNCTION auth.may_change_user(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.may_change_user(bigint) TO witchcraft_app;

CREATE OR REPLACE FUNCTION public.users_guard_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF auth.is_superuser() THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.is_staff OR NEW.is_superuser THEN
            RAISE EXCEPTION 'only a superuser may create a staff account' USING ERRCODE = '42501';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.is_staff IS DISTINCT FROM OLD.is_staff
       OR NEW.is_superuser IS DISTINCT FROM OLD.is_superuser THEN
        RAISE EXCEPTION 'only a superuser may change staff flags' USING ERRCODE = '42501';
    END IF;
    IF (pg_catalog.to_jsonb(NEW) - 'email_verified_at')
           IS DISTINCT FROM (pg_catalog.to_jsonb(OLD) - 'email_verified_at')
       AND NOT auth.may_change_user(OLD.id) THEN
        RAISE EXCEPTION 'not allowed to change user %', OLD.id USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.users_guard_changes() FROM PUBLIC;
DROP TRIGGER IF EXISTS users_guard_changes ON public.users;
CREATE TRIGGER users_guard_changes BEFORE INSERT OR UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.users_guard_changes();

-- end_password_reset_links(p_user_id): mark every still-valid reset link of the user used;
-- return how many. For whoever may change that user's password (auth.may_change_user).
CREATE OR REPLACE FUNCTION public.end_password_reset_links(p_user_id bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_ended integer;
BEGIN
    IF NOT auth.may_change_user(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to end the reset links of user %', p_user_id
            USING ERRCODE = '42501';
    END IF;
    UPDATE public.password_reset_tokens t SET used_at = pg_catalog.now()
     WHERE t.user_id = p_user_id AND t.used_at IS NULL AND t.expires_at > pg_catalog.now();
    GET DIAGNOSTICS v_ended = ROW_COUNT;
    RETURN v_ended;
END
$$;
REVOKE ALL ON FUNCTION public.end_password_reset_links(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.end_password_reset_links(bigint) TO witchcraft_app;
