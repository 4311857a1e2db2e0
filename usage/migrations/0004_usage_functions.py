from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0003_usage_functions.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0003_rls"),
        ("billing", "0004_quota_functions"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
