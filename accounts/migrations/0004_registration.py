from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0003_registration.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_rls_foundation"),
        ("billing", "0003_rls"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
