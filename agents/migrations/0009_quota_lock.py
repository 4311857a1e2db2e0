from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0005_quota_lock.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0008_session_db_defaults"),
        ("accounts", "0011_staff_and_impersonation"),
        ("billing", "0004_quota_functions"),
    ]

    operations = [
        migrations.RunSQL(
            SQL, reverse_sql="DROP FUNCTION IF EXISTS public.lock_user_quota(bigint);"
        )
    ]
