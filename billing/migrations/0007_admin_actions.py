from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0004_admin_actions.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_index_cleanup"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
