"""Who may change an account, checked by the database (accounts/sql/0012_superuser_protection.sql):
only a superuser changes a superuser's account or anyone's staff flags, staff need the
accounts.change_user permission to change someone else's row, and a password change can end
the user's outstanding reset links (end_password_reset_links)."""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0014_access_token_scopes")]

    operations = [
        migrations.RunSQL(
            _sql("0012_superuser_protection.sql"),
            reverse_sql=_sql("0012_superuser_protection.reverse.sql"),
        )
    ]
