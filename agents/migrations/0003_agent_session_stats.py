from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0001_agent_session_stats.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0002_initial"),
        ("usage", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql=SQL, reverse_sql="DROP MATERIALIZED VIEW IF EXISTS public.agent_session_stats;"
        ),
    ]
