"""The SQL objects witchcraft owns, adopted from its numbered SQL files.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0019_functions"),
        ("agents", "0011_functions"),
        ("billing", "0013_functions"),
        ("usage", "0014_batch_row_error_message"),
        ("witchcraft", "0004_functions"),
    ]

    operations = [
        DefineSQL(
            name="public.maintenance_runs",
            sha256="187fcf0067edf93350912986ea02be85780c7d9a9b508851948b1d6572826024",
            kind="policies",
            adopted=True,
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
""",
        ),
    ]
