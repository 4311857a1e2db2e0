"""Reservations are rows (billing/sql/0007_quota_reservations.sql)."""

from decimal import Decimal
from pathlib import Path

import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0010_quota_fast_path"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="QuotaReservation",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("tokens", models.BigIntegerField()),
                (
                    "cost",
                    models.DecimalField(decimal_places=6, default=Decimal("0"), max_digits=12),
                ),
                ("period_start", models.DateTimeField()),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                ("expires_at", models.DateTimeField()),
                ("settled_at", models.DateTimeField(blank=True, null=True)),
                ("usage_id", models.BigIntegerField(blank=True, null=True)),
                ("request_id", models.CharField(blank=True, max_length=100, null=True)),
                ("released_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="quota_reservations",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "quota_reservations",
                "indexes": [
                    models.Index(fields=["user", "-created_at"], name="quota_reservations_user"),
                    models.Index(
                        condition=models.Q(
                            ("released_at__isnull", True), ("settled_at__isnull", True)
                        ),
                        fields=["user", "expires_at"],
                        name="quota_reservations_open",
                    ),
                    models.Index(
                        condition=models.Q(
                            ("released_at__isnull", True), ("settled_at__isnull", True)
                        ),
                        fields=["expires_at"],
                        name="quota_reservations_expiring",
                    ),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("tokens__gte", 0)),
                        name="quota_reservations_tokens_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("cost__gte", 0)),
                        name="quota_reservations_cost_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("expires_at__gt", models.F("created_at"))),
                        name="quota_reservations_expiry",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("settled_at__isnull", True),
                            ("released_at__isnull", True),
                            _connector="OR",
                        ),
                        name="quota_reservations_settled_or_released",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                ("request_id__isnull", True),
                                ("settled_at__isnull", True),
                                ("usage_id__isnull", True),
                            ),
                            models.Q(
                                ("request_id__isnull", False),
                                ("settled_at__isnull", False),
                                ("usage_id__isnull", False),
                            ),
                            _connector="OR",
                        ),
                        name="quota_reservations_settlement",
                    ),
                ],
            },
        ),
        migrations.RunSQL(
            _sql("0007_quota_reservations.sql"),
            reverse_sql=_sql("0007_quota_reservations.reverse.sql")
            + _sql("0006_quota_fast_path.sql"),
        ),
    ]
