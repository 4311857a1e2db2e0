"""New definitions of policies/public.maintenance_runs.

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
        ("witchcraft", "0009_maintenance_runs_prune"),
    ]

    operations = [
        DefineSQL(
            name="public.maintenance_runs",
            sha256="1cdd33e021a1057d527648cd0a3d690c1b686326e59240e1b75a97f6d8e54a24",
            kind="policies",
            previous="witchcraft.0005_sql_baseline",
            drop_on_reverse=[
                "DROP POLICY IF EXISTS maintenance_runs_delete_service ON public.maintenance_runs",
            ],
            sql=r"""-- Row-level security of public.maintenance_runs: the policies below are all of its policies.
ALTER TABLE public.maintenance_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.maintenance_runs FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS maintenance_runs_insert_service ON public.maintenance_runs;
CREATE POLICY maintenance_runs_insert_service ON public.maintenance_runs FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));

DROP POLICY IF EXISTS maintenance_runs_select_admin ON public.maintenance_runs;
CREATE POLICY maintenance_runs_select_admin ON public.maintenance_runs FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS maintenance_runs_update_service ON public.maintenance_runs;
CREATE POLICY maintenance_runs_update_service ON public.maintenance_runs FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));

-- The service deletes only what the every-minute WAL archiving run leaves: its runs older than
-- a day (the latest one holds the figures; failures are in audit_logs too). Nothing else.
DROP POLICY IF EXISTS maintenance_runs_delete_service ON public.maintenance_runs;
CREATE POLICY maintenance_runs_delete_service ON public.maintenance_runs FOR DELETE
    TO witchcraft_app USING ((SELECT auth.is_service()) AND job = 'backup_wal'
        AND started_at < now() - interval '1 day');
""",
        ),
    ]
