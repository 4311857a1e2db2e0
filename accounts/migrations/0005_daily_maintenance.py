from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0004_daily_maintenance.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_registration"),
        ("agents", "0005_session_counters"),
        ("usage", "0004_usage_functions"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
