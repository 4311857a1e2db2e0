"""The periods the dashboard reads: today's UTC date, the month before, the longest period."""

from __future__ import annotations

from datetime import UTC, date, datetime

MAX_PERIOD_DAYS = 366


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def today_utc() -> date:
    return datetime.now(UTC).date()
