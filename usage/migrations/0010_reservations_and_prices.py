"""Recording names its reservation and is priced by the server
(usage/sql/0008_reservations_and_prices.sql)."""

from pathlib import Path

from django.db import migrations, models

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0009_usage_today_totals"),
        ("billing", "0011_quota_reservations"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="aiusagerequest",
                    name="reservation_id",
                    field=models.BigIntegerField(blank=True, null=True),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    _sql("0008_reservations_and_prices.sql"),
                    reverse_sql=_sql("0008_reservations_and_prices.reverse.sql")
                    + _sql("0006_recording_fast_path.sql"),
                ),
            ],
        ),
    ]
