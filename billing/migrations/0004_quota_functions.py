from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0002_quota_functions.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_rls"),
        ("usage", "0003_rls"),
        ("agents", "0004_rls"),
        ("accounts", "0004_registration"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
