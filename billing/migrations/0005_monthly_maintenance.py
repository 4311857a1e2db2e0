from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0003_monthly_maintenance.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_quota_functions"),
        ("usage", "0004_usage_functions"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
