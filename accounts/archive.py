"""Reads of the archived audit events (README "Retention"): those daily maintenance stored
compressed (``archive.audit_log_batches``) and any still waiting uncompressed in
``audit_logs_archive``, through the SQL function ``archived_audit_logs(user, from, to)``. Run in
the caller's row-level-security context: the owner reads their own events, staff every one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connection

COLUMNS = (
    "id, created_at, event_type, severity, host(ip) AS ip, user_agent, request_id, target_type,"
    " target_id, details, actor_id, user_id"
)
# Rows fetched per round trip from a server-side cursor.
FETCH_ROWS = 2000


def _row(names: list[str], values: tuple) -> dict[str, Any]:
    row = dict(zip(names, values, strict=True))
    if isinstance(row.get("details"), str):  # Django has psycopg load jsonb as text
        row["details"] = json.loads(row["details"])
    return row


def archived_audit_events(
    *,
    user_id: int | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The archived events of ``user_id`` (None: everyone) created in [since, until) (None:
    unbounded), newest first, ``limit`` of them after ``offset``; one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {COLUMNS} FROM public.archived_audit_logs(%s, %s, %s)"  # noqa: S608 - constant
            " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
            [user_id, since, until, limit, offset],
        )
        names = [column.name for column in cursor.description]
        return [_row(names, values) for values in cursor.fetchall()]


def archived_audit_events_of(user_id: int) -> Iterator[dict[str, Any]]:
    """Every archived event of the user, oldest first, read through a server-side cursor (the
    data export), each with ``by_staff`` (someone other than the user acted)."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT {COLUMNS}, (actor_id IS NOT NULL AND actor_id <> user_id) AS by_staff"  # noqa: S608
            " FROM public.archived_audit_logs(%s, NULL, NULL) ORDER BY created_at, id",
            [user_id],
        )
        names = [column.name for column in cursor.description]
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield from (_row(names, values) for values in rows)


def archived_audit_count(*, user_id: int) -> int:
    """How many archived events the user has."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM public.archived_audit_logs(%s, NULL, NULL)", [user_id])
        return cursor.fetchone()[0]
