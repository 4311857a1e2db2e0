"""The public catalog's models: only those of active providers
(usage/sql/0010_models_of_active_providers.sql)."""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [("usage", "0011_usage_archive")]

    operations = [
        migrations.RunSQL(
            (SQL_DIR / "0010_models_of_active_providers.sql").read_text(),
            reverse_sql=(SQL_DIR / "0010_models_of_active_providers.reverse.sql").read_text(),
        )
    ]
