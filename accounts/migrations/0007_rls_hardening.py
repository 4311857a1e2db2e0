from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0005_rls_hardening.sql").read_text()


class Migration(migrations.Migration):
    # After every migration that creates SECURITY DEFINER functions or the policies it amends.
    dependencies = [
        ("accounts", "0006_index_cleanup"),
        ("accounts", "0005_daily_maintenance"),
        ("agents", "0008_session_db_defaults"),
        ("billing", "0006_index_cleanup"),
        ("billing", "0005_monthly_maintenance"),
        ("usage", "0005_index_cleanup"),
        ("usage", "0004_usage_functions"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
