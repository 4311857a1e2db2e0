"""New definitions of functions/public.agent_sessions_end_idle.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0020_sql_baseline"),
        ("agents", "0012_sql_baseline"),
        ("billing", "0014_sql_baseline"),
        ("usage", "0016_error_message"),
        ("witchcraft", "0005_sql_baseline"),
    ]

    operations = [
        DefineSQL(
            name="public.agent_sessions_end_idle",
            sha256="b33ae550b6d7a89a3b35ef9a76b0ccebe429c56b183edadccf56a8b6de209761",
            drop_on_reverse=[
                "DROP FUNCTION IF EXISTS public.agent_sessions_end_idle()",
            ],
            sql=r"""-- agent_sessions_end_idle(): the agents step of daily_maintenance. Ends the agent sessions
-- without activity for 24 hours and returns how many it ended (daily_maintenance's
-- sessions_ended). Idempotent: an ended session is no longer active, so a second run ends none.
-- Service context only; not granted to the runtime role (daily_maintenance reaches it as the
-- owner).
CREATE OR REPLACE FUNCTION public.agent_sessions_end_idle() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_sessions integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'agent_sessions_end_idle: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    -- ended_at = last_activity_at: the session ended when it was last used, not when we noticed
    -- (and agent_sessions_active_not_ended wants is_active false once ended_at is set).
    UPDATE public.agent_sessions
       SET is_active = false, ended_at = last_activity_at
     WHERE is_active AND last_activity_at < now() - interval '24 hours';
    GET DIAGNOSTICS v_sessions = ROW_COUNT;
    RETURN v_sessions;
END
$$;
REVOKE ALL ON FUNCTION public.agent_sessions_end_idle() FROM PUBLIC;
""",
        ),
    ]
