"""Request windows and slow statements for the monitoring page and /metrics
(witchcraft/sql/0003_monitoring_windows.sql)."""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("witchcraft", "0002_maintenance_runs"),
        # The index is on the usage log; the functions read it.
        ("usage", "0010_reservations_and_prices"),
    ]

    operations = [
        migrations.RunSQL(
            _sql("0003_monitoring_windows.sql"),
            reverse_sql=_sql("0003_monitoring_windows.reverse.sql"),
        )
    ]
