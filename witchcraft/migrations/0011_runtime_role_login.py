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
        # Not undone on the way back: a role belongs to the whole server, and a database
        # migrated back must not take the login from the others that share it.
        migrations.RunSQL(_sql("0011_runtime_role_login.sql"), reverse_sql=migrations.RunSQL.noop)
    ]
