from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0004_usage_batch.sql").read_text()

REVERSE_SQL = """
DROP FUNCTION IF EXISTS public.record_ai_usage_batch(bigint, jsonb);
DROP FUNCTION IF EXISTS public.ai_usage_batch_is_text(jsonb, integer);
DROP FUNCTION IF EXISTS public.ai_usage_batch_amount(jsonb, numeric);
DROP FUNCTION IF EXISTS public.ai_usage_batch_count(jsonb, bigint);
DROP TYPE IF EXISTS public.ai_usage_batch_row;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0005_index_cleanup"),
        ("accounts", "0011_staff_and_impersonation"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
