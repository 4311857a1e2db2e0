from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0006_quota_fast_path.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_subscription_lifecycle_sql"),
    ]

    operations = [
        migrations.RunSQL(
            SQL, reverse_sql="DROP FUNCTION IF EXISTS public.quota_may_alert(public.user_quotas);"
        )
    ]
