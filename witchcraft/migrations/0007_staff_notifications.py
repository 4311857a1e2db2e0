from pathlib import Path

import django.contrib.postgres.fields
from django.db import migrations, models

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("witchcraft", "0006_maintenance_steps"),
    ]

    operations = [
        # The tables are made by SQL (constraints, grants; their policies are live files:
        # witchcraft/sql/policies/); Django knows them too, so that the test flush empties them.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    _sql("0007_staff_notifications.sql"),
                    reverse_sql=_sql("0007_staff_notifications.reverse.sql"),
                )
            ],
            state_operations=[
                migrations.CreateModel(
                    name="NotificationState",
                    fields=[
                        (
                            "check_key",
                            models.CharField(max_length=64, primary_key=True, serialize=False),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("ok", "Ok"),
                                    ("firing", "Firing"),
                                    ("notified", "Notified"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("measured", models.CharField(blank=True, default="", max_length=500)),
                        ("changed_at", models.DateTimeField()),
                    ],
                    options={
                        "db_table": "notification_states",
                        "indexes": [
                            models.Index(fields=["changed_at"], name="notification_states_changed")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="StaffNotification",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("check_key", models.CharField(max_length=64)),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("firing", "Firing"),
                                    ("resolved", "Resolved"),
                                    ("raised", "Raised"),
                                    ("test", "Test"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("title", models.CharField(max_length=200)),
                        ("body", models.TextField()),
                        (
                            "channels",
                            django.contrib.postgres.fields.ArrayField(
                                base_field=models.CharField(max_length=16),
                                blank=True,
                                default=list,
                                size=None,
                            ),
                        ),
                        ("created_at", models.DateTimeField()),
                        ("mail_sent_at", models.DateTimeField(blank=True, null=True)),
                        ("webhook_sent_at", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.CharField(blank=True, default="", max_length=300)),
                    ],
                    options={
                        "db_table": "staff_notifications",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(fields=["-created_at"], name="staff_notifications_created")
                        ],
                    },
                ),
            ],
        ),
    ]
