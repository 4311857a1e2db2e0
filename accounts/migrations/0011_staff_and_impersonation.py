from pathlib import Path

from django.db import migrations

SQL = (
    Path(__file__).resolve().parent.parent / "sql" / "0009_staff_and_impersonation.sql"
).read_text()


class Migration(migrations.Migration):
    # After the latest accounts migration (0010 also follows 0009_recovery: two leaves would be
    # a conflict that migrate refuses).
    dependencies = [("accounts", "0010_access_token_authentication")]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
