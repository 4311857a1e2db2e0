"""Usage partitions past the retention move to the archive schema
(usage/sql/0009_usage_archive.sql)."""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def _second_daily_maintenance() -> str:
    """The daily_maintenance() of 0005_usage_daily_totals.sql, with its grants."""
    text = _sql("0005_usage_daily_totals.sql")
    start = text.index("CREATE OR REPLACE FUNCTION public.daily_maintenance()")
    grant = "GRANT EXECUTE ON FUNCTION public.daily_maintenance() TO witchcraft_app;"
    return text[start : text.index(grant) + len(grant)] + "\n"


class Migration(migrations.Migration):
    dependencies = [("usage", "0010_reservations_and_prices")]

    operations = [
        migrations.RunSQL(
            _sql("0009_usage_archive.sql"),
            reverse_sql=_sql("0009_usage_archive.reverse.sql") + _second_daily_maintenance(),
        )
    ]
