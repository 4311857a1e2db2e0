-- set_user_active(user, active): a staff member deactivates (false) or reactivates (true) an
-- account. users.is_active is not granted to the runtime role; this is its one path, and
-- users_guard_changes checks it again. A deactivated account cannot sign in, and its sessions
-- and access tokens stop working at once (both check is_active).
-- Allowed: staff holding accounts.change_user (auth.may_change_user), never on a superuser's
-- account unless a superuser, and never on their own account (locking oneself out is not an
-- action; another staff member does it). Writes user_deactivated / user_reactivated to the
-- audit trail (the staff member as actor). Returns false when the account already was so
-- (nothing written).
-- Refused: 42501 (not allowed, or oneself), 22023 (no such user, or a deleted account).
CREATE OR REPLACE FUNCTION public.set_user_active(p_user_id bigint, p_active boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_user public.users%ROWTYPE;
BEGIN
    IF p_user_id IS NULL OR p_active IS NULL THEN
        RAISE EXCEPTION 'set_user_active: the user and the flag are required'
            USING ERRCODE = '22023';
    END IF;
    IF NOT auth.is_admin() OR NOT auth.may_change_user(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to change user %', p_user_id USING ERRCODE = '42501';
    END IF;
    IF auth.user_id() IS NOT DISTINCT FROM p_user_id THEN
        RAISE EXCEPTION 'Staff cannot deactivate or reactivate their own account.'
            USING ERRCODE = '42501';
    END IF;
    SELECT * INTO v_user FROM public.users u WHERE u.id = p_user_id FOR UPDATE;
    IF NOT FOUND OR v_user.deleted_at IS NOT NULL THEN
        RAISE EXCEPTION 'No such account.' USING ERRCODE = '22023';
    END IF;
    IF v_user.is_active = p_active THEN
        RETURN false;
    END IF;
    UPDATE public.users SET is_active = p_active WHERE id = p_user_id;
    PERFORM public.write_audit_log(
        p_event_type => CASE WHEN p_active THEN 'user_reactivated' ELSE 'user_deactivated' END,
        p_user_id => p_user_id, p_severity => CASE WHEN p_active THEN 'info' ELSE 'warning' END,
        p_target_type => 'user', p_target_id => p_user_id::text);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.set_user_active(bigint, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_user_active(bigint, boolean) TO witchcraft_app;
