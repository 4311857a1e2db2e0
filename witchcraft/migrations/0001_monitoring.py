from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0001_monitoring.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_rls_foundation")]

    operations = [
        migrations.RunSQL(
            SQL,
            reverse_sql="DROP FUNCTION IF EXISTS public.monitoring_connections();"
            " DROP FUNCTION IF EXISTS public.monitoring_slow_queries(numeric, integer);",
        )
    ]
