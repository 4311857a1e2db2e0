"""Monthly reports by the plan in force for most of the month
(billing/sql/0008_monthly_reports.sql)."""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def _monthly_maintenance_v2() -> str:
    """monthly_maintenance()'s second version, as billing/sql/0005 installs it."""
    text = _sql("0005_subscription_lifecycle.sql")
    start = text.index("CREATE OR REPLACE FUNCTION public.monthly_maintenance()")
    grant = "GRANT EXECUTE ON FUNCTION public.monthly_maintenance() TO witchcraft_app;"
    return text[start : text.index(grant, start) + len(grant)] + "\n"


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_quota_reservations"),
    ]

    operations = [
        migrations.RunSQL(
            _sql("0008_monthly_reports.sql"),
            reverse_sql=_monthly_maintenance_v2() + _sql("0008_monthly_reports.reverse.sql"),
        ),
    ]
