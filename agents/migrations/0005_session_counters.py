from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0003_session_counters.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0004_rls"),
        ("usage", "0004_usage_functions"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
