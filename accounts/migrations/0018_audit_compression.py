"""Audit events past the retention are stored compressed, per user and month
(accounts/sql/0015_audit_compression.sql)."""

from pathlib import Path

from django.db import migrations

ROOT = Path(__file__).resolve().parent.parent.parent


def _sql(path: str) -> str:
    return (ROOT / path).read_text()


def _third_daily_maintenance() -> str:
    """The daily_maintenance(integer, integer) of usage/sql/0009_usage_archive.sql."""
    text = _sql("usage/sql/0009_usage_archive.sql")
    start = text.index("CREATE FUNCTION public.daily_maintenance(")
    grant = (
        "GRANT EXECUTE ON FUNCTION public.daily_maintenance(integer, integer) TO witchcraft_app;"
    )
    return text[start : text.index(grant) + len(grant)] + "\n"


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0017_framework_tables_rls"),
        ("usage", "0011_usage_archive"),
    ]

    operations = [
        migrations.RunSQL(
            _sql("accounts/sql/0015_audit_compression.sql"),
            reverse_sql=_sql("accounts/sql/0015_audit_compression.reverse.sql")
            + _third_daily_maintenance(),
        )
    ]
