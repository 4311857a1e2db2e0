from pathlib import Path

import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

SQL = (Path(__file__).resolve().parent.parent / "sql" / "0011_service_credentials.sql").read_text()
FUNCTIONS = (
    "public.authenticate_service_credential(text)",
    "public.revoke_service_credential(bigint, text)",
    "public.create_service_credential(text, text, text, text[], timestamptz, text)",
    "public.service_credentials_issuer()",
)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_account_deletion"),
    ]

    operations = [
        migrations.CreateModel(
            name="ServiceCredential",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                (
                    "prefix",
                    models.CharField(
                        help_text="the first characters, shown to tell credentials apart",
                        max_length=16,
                    ),
                ),
                ("token_hash", models.CharField(max_length=64)),
                (
                    "scopes",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=32)
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                ("expires_at", models.DateTimeField()),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "revoked_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "service_credentials",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("token_hash",), name="service_credentials_token_hash_key"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("token_hash__regex", "^[0-9a-f]{64}$")),
                        name="service_credentials_token_hash_sha256",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("expires_at__gt", models.F("created_at"))),
                        name="service_credentials_expiry_after_creation",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("name", ""), _negated=True),
                        name="service_credentials_name_not_empty",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("scopes__contained_by", ["usage.read", "usage.record", "agents"]),
                            ("scopes__len__gt", 0),
                        ),
                        name="service_credentials_scopes_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("revoked_by__isnull", True),
                            ("revoked_at__isnull", False),
                            _connector="OR",
                        ),
                        name="service_credentials_revoked_by_needs_revoked_at",
                    ),
                ],
            },
        ),
        migrations.RunSQL(
            SQL, reverse_sql="".join(f"DROP FUNCTION IF EXISTS {f};" for f in FUNCTIONS)
        ),
    ]
