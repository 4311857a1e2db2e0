from pathlib import Path

from django.db import migrations, models

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0002_maintenance_runs.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("witchcraft", "0001_monitoring"),
        ("accounts", "0003_rls_foundation"),
        # monitoring_job_queue() reads the job queue's tables.
        ("procrastinate", "0041_post_retry_failed_job"),
    ]

    operations = [
        # The table is made by SQL (constraints, row-level security); Django knows it too, so
        # that the test flush empties it.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    SQL,
                    reverse_sql="DROP FUNCTION IF EXISTS public.monitoring_job_queue();"
                    " DROP TABLE IF EXISTS public.maintenance_runs;",
                )
            ],
            state_operations=[
                migrations.CreateModel(
                    name="MaintenanceRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("job", models.CharField(max_length=64)),
                        (
                            "source",
                            models.CharField(
                                choices=[("schedule", "Schedule"), ("command", "Command")],
                                max_length=16,
                            ),
                        ),
                        ("scheduled_for", models.DateTimeField(blank=True, null=True)),
                        ("started_at", models.DateTimeField()),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("duration_ms", models.IntegerField(blank=True, null=True)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("running", "Running"),
                                    ("succeeded", "Succeeded"),
                                    ("failed", "Failed"),
                                ],
                                default="running",
                                max_length=16,
                            ),
                        ),
                        ("summary", models.JSONField(blank=True, default=dict)),
                        ("error", models.TextField(blank=True, default="")),
                        ("queue_job_id", models.BigIntegerField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "maintenance_runs",
                        "ordering": ["-started_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["job", "-started_at"],
                                name="maintenance_runs_job_started",
                            ),
                            models.Index(fields=["-started_at"], name="maintenance_runs_started"),
                        ],
                    },
                ),
            ],
        ),
    ]
