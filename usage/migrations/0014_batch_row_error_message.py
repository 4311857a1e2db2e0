"""record_ai_usage_batch's working row keeps the record's error message (written by 0015)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("usage", "0013_functions")]

    operations = [
        migrations.RunSQL(
            "ALTER TYPE public.ai_usage_batch_row ADD ATTRIBUTE error_message text;",
            reverse_sql="ALTER TYPE public.ai_usage_batch_row DROP ATTRIBUTE error_message;",
        )
    ]
