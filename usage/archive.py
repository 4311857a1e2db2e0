"""Reads of the archived usage rows (README "Retention"): the monthly partitions of
``ai_usage_requests`` that daily maintenance moved to ``archive.ai_usage_requests``. Run in the
caller's row-level-security context: the owner reads their own rows, staff every one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connection

# The columns a usage row is shown and exported with (live or archived), in their order.
REQUEST_FIELDS = (
    "id",
    "created_at",
    "request_id",
    "provider_id",
    "model_id",
    "agent_session_id",
    "agent_message_id",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "input_price_per_million",
    "output_price_per_million",
    "cached_input_price_per_million",
    "latency_ms",
    "time_to_first_token_ms",
    "status",
    "error_code",
    "error_message",
    "metadata",
)
# Rows fetched per round trip from a server-side cursor.
FETCH_ROWS = 2000
_SELECT = f"SELECT {', '.join(REQUEST_FIELDS)}, user_id FROM archive.ai_usage_requests"  # noqa: S608


def _row(names: list[str], values: tuple) -> dict[str, Any]:
    row = dict(zip(names, values, strict=True))
    if isinstance(row.get("metadata"), str):  # Django has psycopg load jsonb as text
        row["metadata"] = json.loads(row["metadata"])
    return row


def _where(user_id: int | None, since: datetime | None, until: datetime | None):
    conditions, params = ["true"], []
    for condition, value in (
        ("user_id = %s", user_id),
        ("created_at >= %s", since),
        ("created_at < %s", until),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    return " AND ".join(conditions), params


def archived_usage_requests(
    *,
    user_id: int | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The archived usage rows of ``user_id`` (None: everyone) created in [since, until) (None:
    unbounded), newest first, ``limit`` of them after ``offset``; one query."""
    where, params = _where(user_id, since, until)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{_SELECT} WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        names = [column.name for column in cursor.description]
        return [_row(names, values) for values in cursor.fetchall()]


def archived_usage_requests_of(user_id: int) -> Iterator[dict[str, Any]]:
    """Every archived usage row of the user, oldest first, through a server-side cursor (the
    data export), without ``user_id``."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"{_SELECT} WHERE user_id = %s ORDER BY created_at, id", [user_id])
        names = [column.name for column in cursor.description]
        while rows := cursor.fetchmany(FETCH_ROWS):
            for values in rows:
                row = _row(names, values)
                del row["user_id"]
                yield row


def archived_usage_count(*, user_id: int) -> int:
    """How many archived usage rows the user has."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM archive.ai_usage_requests WHERE user_id = %s", [user_id]
        )
        return cursor.fetchone()[0]
