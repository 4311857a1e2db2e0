from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0002_rls_foundation.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_security_tables"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("sessions", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
