"""The months a report covers: today's UTC date, a month's label and the month before, and
parsing a YYYY-MM that names a complete month from 2000-01 on."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from usage.dashboard_selectors import previous_month

FIRST_MONTH = date(2000, 1, 1)  # usage_monthly_reports_year_valid

MONTH_MALFORMED = "Give the month as YYYY-MM (for example 2026-11)."
MONTH_TOO_EARLY = "Reports cover months from 2000-01 on."
MONTH_IN_FUTURE = "{month} is in the future: the last complete month is {last}."
MONTH_NOT_ENDED = "{month} has not ended yet: the last complete month is {last}."


def today() -> date:
    """Today in UTC: the one clock the month checks read (a test sets it)."""
    return datetime.now(UTC).date()


def month_label(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def last_complete_month(*, today: date) -> date:
    """The first day of the month before ``today``'s."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def month_before(month: date) -> date:
    year, number = previous_month(month.year, month.month)
    return date(year, number, 1)


class MonthError(ValueError):
    """A month no report can cover; the message says why (one of the MONTH_* texts)."""


def parse_month(text: str, *, today: date) -> date:
    """The first day of the month ``text`` names (YYYY-MM): a complete month from 2000-01 on."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise MonthError(MONTH_MALFORMED)
    if int(match[1]) < FIRST_MONTH.year:
        raise MonthError(MONTH_TOO_EARLY)
    month = date(int(match[1]), int(match[2]), 1)
    last = last_complete_month(today=today)
    if month > last:
        text = MONTH_IN_FUTURE if month > today else MONTH_NOT_ENDED
        raise MonthError(text.format(month=month_label(month), last=month_label(last)))
    return month
