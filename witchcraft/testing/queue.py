"""Looking into the job queue (procrastinate's tables) from tests, as the owner role.

Django's flush does not empty those tables (procrastinate's models are unmanaged): tests that
commit jobs call :func:`clear_queue` before and after.
"""

import json
from typing import Any

from django.db import connection

QUEUE_TABLES = (
    "procrastinate_periodic_defers",
    "procrastinate_events",
    "procrastinate_jobs",
    "procrastinate_workers",
)


def clear_queue() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(QUEUE_TABLES)} RESTART IDENTITY CASCADE")


def queued_jobs(task_name: str | None = None) -> list[dict[str, Any]]:
    """Every job (any status), oldest first, as dicts of its columns."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, task_name, queue_name, status::text AS status, args, lock,"
            " queueing_lock, attempts, scheduled_at FROM procrastinate_jobs"
            " WHERE %(task)s::text IS NULL OR task_name = %(task)s ORDER BY id",
            {"task": task_name},
        )
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:  # Django has psycopg load jsonb as text
        if isinstance(row["args"], str):
            row["args"] = json.loads(row["args"])
    return rows


def queue_text() -> str:
    """Everything the queue stores about jobs, as one text (to look for a secret in it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(string_agg(row_to_json(j)::text, ' '), '') FROM procrastinate_jobs j"
        )
        (jobs,) = cursor.fetchone()
        cursor.execute(
            "SELECT coalesce(string_agg(row_to_json(e)::text, ' '), '') FROM procrastinate_events e"
        )
        (events,) = cursor.fetchone()
    return f"{jobs} {events}"
