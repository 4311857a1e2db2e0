from pathlib import Path

from django.db import migrations

SQL = (
    Path(__file__).resolve().parent.parent / "sql" / "0005_subscription_lifecycle.sql"
).read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_subscription_lifecycle"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
