"""Row-level security on Django's users_groups and users_user_permissions, and no rights on the
unused django_session (accounts/sql/0014_framework_tables.sql)."""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [("accounts", "0016_audit_request_id")]

    operations = [
        migrations.RunSQL(
            (SQL_DIR / "0014_framework_tables.sql").read_text(),
            reverse_sql=(SQL_DIR / "0014_framework_tables.reverse.sql").read_text(),
        )
    ]
