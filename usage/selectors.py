"""Reads for usage pages, the API and charts: plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection, transaction

from usage.services import refusals


@dataclass(frozen=True)
class DayActivity:
    """One UTC day of a user's activity (``get_user_activity_summary``)."""

    day: date
    requests: int
    failures: int  # every outcome but success
    tokens: int
    cost: Decimal
    sessions_started: int
    messages: int


def activity_summary(*, user_id: int, days: int = 30) -> list[DayActivity]:
    """Return one DayActivity per UTC day of the ``days`` days ending today, oldest first.

    Idle days are included with zeros. Raises ``usage.services.UsageError``: ``invalid`` when
    ``days`` is not between 1 and 366, ``forbidden`` when the caller may not see the user.
    """
    with refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT day, requests, failures, tokens, cost, sessions_started, messages"
            " FROM get_user_activity_summary(p_user_id => %s::bigint, p_days => %s::integer)",
            [user_id, days],
        )
        rows = cursor.fetchall()
    return [DayActivity(*row) for row in rows]
