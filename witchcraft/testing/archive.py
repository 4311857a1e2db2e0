"""Archived rows for tests: audit events stored compressed and usage rows in an archived
partition, made the way daily maintenance makes them (its SQL functions, service context)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import connection, transaction

from accounts.models import AuditLog, User
from usage.models import AIModel
from witchcraft.platform import rls
from witchcraft.testing.factories import AuditLogFactory, usage_request


def _service(sql: str, params=()) -> None:
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute(sql, list(params))


def archived_event(user: User | None, *, days_old: int = 100, **fields) -> AuditLog:
    """An audit event ``days_old`` days old, then compressed (compress_audit_logs(90, ...))."""
    log = AuditLogFactory(user=user, **fields)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_logs SET created_at = now() - make_interval(days => %s) WHERE id = %s"
            " RETURNING created_at",
            [days_old, log.pk],
        )
        log.created_at = cursor.fetchone()[0]
    _service("SELECT compress_audit_logs(90, 1000000)")
    return log


def months_ago(n: int) -> date:
    """The first day of the UTC month ``n`` months before the database's now()."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date")
        first = cursor.fetchone()[0]
    index = first.year * 12 + first.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def old_usage(user: User, model: AIModel, *, months: int = 14, day: int = 10, **fields):
    """A usage row ``months`` months back (in its own monthly partition, made if missing):
    archived by :func:`archive_usage` when ``months`` is over 12. Make every old row first:
    a partition already archived is not made again."""
    month = months_ago(months)
    with connection.cursor() as cursor:
        cursor.execute("SELECT ensure_usage_partitions(0, %s)", [months])
    return usage_request(
        user=user,
        model=model,
        created_at=datetime(month.year, month.month, day, 12, tzinfo=UTC),
        **fields,
    )


def archive_usage() -> None:
    """Archive every partition past 12 months, as daily maintenance does."""
    _service("SELECT archive_usage_partitions(12, 120)")
