"""audit_logs.request_id holds only plausible ids (accounts/sql/0013_audit_request_id.sql)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0013_audit_request_id.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0015_superuser_protection")]

    operations = [
        migrations.RunSQL(
            SQL,
            reverse_sql="ALTER TABLE public.audit_logs"
            " DROP CONSTRAINT IF EXISTS audit_logs_request_id_plausible;",
        )
    ]
