"""Trigram indexes for the staff user directory's search: part of an email or of a name
(accounts/sql/0016_user_directory_search.sql)."""

from pathlib import Path

from django.db import migrations

ROOT = Path(__file__).resolve().parent.parent.parent


def _sql(path: str) -> str:
    return (ROOT / path).read_text()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0022_set_user_active")]

    operations = [
        migrations.RunSQL(
            _sql("accounts/sql/0016_user_directory_search.sql"),
            reverse_sql=_sql("accounts/sql/0016_user_directory_search.reverse.sql"),
        )
    ]
