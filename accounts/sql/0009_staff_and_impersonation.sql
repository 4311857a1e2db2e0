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

-- The audit row: subject = the changed account, actor = whoever the context says (the
-- superuser; NULL for an operator outside any context), IP and request id from the context.
CREATE OR REPLACE FUNCTION public.users_audit_staff_flags() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    PERFORM public.write_audit_log(
        p_event_type => 'staff_flag_changed',
        p_user_id => NEW.id,
        p_severity => 'warning',
        p_details => jsonb_build_object(
            'email', NEW.email,
            'old', jsonb_build_object('is_staff', OLD.is_staff,
                                      'is_superuser', OLD.is_superuser),
            'new', jsonb_build_object('is_staff', NEW.is_staff,
                                      'is_superuser', NEW.is_superuser)),
        p_target_type => 'user',
        p_target_id => NEW.id::text);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.users_audit_staff_flags() FROM PUBLIC;
DROP TRIGGER IF EXISTS users_audit_staff_flags ON public.users;
CREATE TRIGGER users_audit_staff_flags AFTER UPDATE OF is_staff, is_superuser ON public.users
    FOR EACH ROW
    WHEN (OLD.is_staff IS DISTINCT FROM NEW.is_staff
          OR OLD.is_superuser IS DISTINCT FROM NEW.is_superuser)
    EXECUTE FUNCTION public.users_audit_staff_flags();

CREATE POLICY users_select_actor ON public.users FOR SELECT TO witchcraft_app
    USING (id = (SELECT auth.actor_id()));
