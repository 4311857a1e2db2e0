from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0006_recording_fast_path.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0007_usage_daily_totals"),
        ("billing", "0010_quota_fast_path"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
