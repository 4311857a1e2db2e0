from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0007_recovery.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_user_sessions"),
        ("accounts", "0007_rls_hardening"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
