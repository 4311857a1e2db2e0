from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("witchcraft", "0008_staff_notifications_policies"),
    ]

    operations = [
        migrations.RunSQL(
            _sql("0009_maintenance_runs_prune.sql"),
            reverse_sql=_sql("0009_maintenance_runs_prune.reverse.sql"),
        )
    ]
