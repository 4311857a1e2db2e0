"""New definitions of functions/auth.is_service.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0024_users_search"),
        ("agents", "0013_maintenance_steps"),
        ("billing", "0017_quota_limit_raise_functions"),
        ("usage", "0018_record_usage_token"),
        ("witchcraft", "0011_runtime_role_login"),
    ]

    operations = [
        DefineSQL(
            name="auth.is_service",
            sha256="b00f2800c4d6c8959fea2c1db26eff0ee52078142a19bc87c6708e558ad36f1b",
            previous="witchcraft.0004_functions",
            sql=r"""-- Service context: a command or job (witchcraft.rls.service_context), or a session that did not
-- switch to the runtime role at all (an operator in psql, the migration role). Inside a
-- SECURITY DEFINER function current_user is the owner, but the 'role' setting still tells
-- whether the caller had switched to witchcraft_app. A session logged in as the runtime role
-- itself (it can log in: migration 0011) has no role to switch from: it is not the service by
-- that alone, and with no identity set it sees nothing.
CREATE OR REPLACE FUNCTION auth.is_service() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('app.is_service', true), '')::boolean, false)
        OR (current_setting('role') = 'none' AND session_user <> 'witchcraft_app')
$$;
REVOKE ALL ON FUNCTION auth.is_service() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.is_service() TO witchcraft_app;
""",
        ),
    ]
