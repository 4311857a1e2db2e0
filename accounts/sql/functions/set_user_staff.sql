-- Staff flags and impersonation.
--
-- 1. users.is_staff and users.is_superuser are not granted to the runtime role (0002): the one
--    way it changes them is set_user_staff(), which only an active superuser (or the service
--    context) may call.
-- 2. Every change of those flags, whatever the path (set_user_staff, an operator in psql, a
--    command running as the owner), writes a staff_flag_changed audit row with the old and the
--    new values: a trigger, so no path can forget it.
-- 3. While a staff member impersonates a user, requests run as that user with app.actor_id set
--    to the staff member (accounts/impersonation.py). django-hijack reads the staff member's
--    row to end the impersonation, so a user context may read the users row of its own actor,
--    and nothing more.
CREATE OR REPLACE FUNCTION public.set_user_staff(
    p_user_id bigint, p_is_staff boolean, p_is_superuser boolean
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_allowed boolean;
    v_user public.users%ROWTYPE;
BEGIN
    IF p_user_id IS NULL OR p_is_staff IS NULL OR p_is_superuser IS NULL THEN
        RAISE EXCEPTION 'set_user_staff: the user and both flags are required'
            USING ERRCODE = '22023';
    END IF;
    IF NOT auth.is_service() THEN
        -- The caller's own row decides, not the session's flag; an impersonated context is a
        -- plain user (never admin), so it is refused here too.
        SELECT u.is_superuser AND u.is_staff AND u.is_active AND u.deleted_at IS NULL
          INTO v_allowed
          FROM public.users u
         WHERE u.id = auth.user_id();
        IF NOT (auth.is_admin() AND coalesce(v_allowed, false)) THEN
            RAISE EXCEPTION 'only a superuser may change staff flags' USING ERRCODE = '42501';
        END IF;
    END IF;
    SELECT * INTO v_user FROM public.users u
     WHERE u.id = p_user_id AND u.deleted_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'set_user_staff: no user %', p_user_id USING ERRCODE = '22023';
    END IF;
    IF v_user.is_staff = p_is_staff AND v_user.is_superuser = p_is_superuser THEN
        RETURN false;
    END IF;
    UPDATE public.users SET is_staff = p_is_staff, is_superuser = p_is_superuser
     WHERE id = p_user_id;  -- audited by users_audit_staff_flags
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.set_user_staff(bigint, boolean, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_user_staff(bigint, boolean, boolean) TO witchcraft_app;
