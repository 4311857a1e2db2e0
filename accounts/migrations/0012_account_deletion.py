from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0010_account_deletion.sql").read_text()


class Migration(migrations.Migration):
    # delete_user_account() writes the agents', billing's and django-otp's tables: after them.
    dependencies = [
        ("accounts", "0011_staff_and_impersonation"),
        ("agents", "0010_sessions_activity_index"),
        ("billing", "0007_admin_actions"),
        ("otp_totp", "__latest__"),
        ("otp_static", "__latest__"),
    ]

    operations = [
        migrations.RunSQL(
            SQL,
            reverse_sql="DROP FUNCTION IF EXISTS public.delete_user_account(bigint);"
            " DROP FUNCTION IF EXISTS public.ensure_user_profile(bigint);",
        )
    ]
