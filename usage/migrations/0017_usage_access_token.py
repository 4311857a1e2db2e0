"""Usage rows name the API token that sent them (usage/sql/0011_usage_access_token.sql)."""

from pathlib import Path

from django.db import migrations, models

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


class Migration(migrations.Migration):
    dependencies = [("usage", "0016_error_message")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="aiusagerequest",
                    name="access_token_id",
                    field=models.BigIntegerField(blank=True, null=True),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    _sql("0011_usage_access_token.sql"),
                    reverse_sql=_sql("0011_usage_access_token.reverse.sql"),
                ),
            ],
        ),
    ]
