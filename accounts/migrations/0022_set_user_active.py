"""New definitions of functions/public.set_user_active.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0021_maintenance_steps"),
        ("agents", "0013_maintenance_steps"),
        ("billing", "0016_quota_limit_raises"),
        ("usage", "0016_error_message"),
        ("witchcraft", "0006_maintenance_steps"),
    ]

    operations = [
        DefineSQL(
            name="public.set_user_active",
            sha256="77784ed5311023e9c653459d3c6c6518475e235ee7db3acc2101fc4caa8279e9",
            drop_on_reverse=[
                "DROP FUNCTION IF EXISTS public.set_user_active(bigint,boolean)",
            ],
            sql=r"""-- set_user_active(user, active): a staff member deactivates (false) or reactivates (true) an
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
""",
        ),
    ]
