from pathlib import Path

from django.db import migrations

SQL = (
    Path(__file__).resolve().parent.parent / "sql" / "0008_access_token_authentication.sql"
).read_text()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0009_recovery")]

    operations = [
        migrations.RunSQL(
            SQL,
            reverse_sql="DROP FUNCTION IF EXISTS public.authenticate_access_token(text, inet, text)",
        )
    ]
