from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("witchcraft", "0010_backup_runs_policy"),
    ]

    operations = [
        migrations.RunSQL(
            _sql("0011_runtime_role_login.sql"),
            reverse_sql=_sql("0011_runtime_role_login.reverse.sql"),
        )
    ]
