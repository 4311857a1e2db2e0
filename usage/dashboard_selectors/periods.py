"""The periods the dashboard reads, in one place: today's UTC date, the month before, the
longest period, the quick ranges (today, 7 d, 30 d, this month, last month) and the period a
range is compared with.

Every page counts in UTC days (the roll-ups' days), staff and end users alike, so "today" is
the UTC date. A range is compared with the same days of the period before it: the same number
of days just before, or for a calendar range the same days of the previous calendar period
(Dec 1-7 → Nov 1-7, all of March → all of February, Mar 1-30 → Feb 1-28). Pure functions.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

MAX_PERIOD_DAYS = 366
DASH = "\u2013"  # the en dash of "Nov 1-7" in labels


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def today_utc(now: datetime | None = None) -> date:
    """The UTC date of ``now`` (an aware datetime in any time zone; default: the clock)."""
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def month_last_day(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def months_before(day: date, count: int) -> date:
    """The first day of the month ``count`` months before ``day``'s."""
    index = day.year * 12 + day.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """UTC days from ``start`` to ``end``, both included."""

    start: date
    end: date

    def __post_init__(self):
        if self.start > self.end:
            raise ValueError(f"{self.start} is after {self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def whole_months(self) -> int:
        """How many whole calendar months the period is (0: it is not whole months)."""
        if self.start.day != 1 or self.end != month_last_day(self.end):
            return 0
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    def label(self, *, this_year: int | None = None) -> str:
        """``Nov 1-7``, ``Nov 28-Dec 4``, ``Dec 6``; with the years when the period spans two,
        or when its year is not ``this_year`` (``Dec 29, 2025-Jan 4, 2026``)."""
        start, end = self.start, self.end
        show_year = start.year != end.year or (this_year is not None and end.year != this_year)
        first = f"{start:%b} {start.day}"
        if start.year != end.year:
            return f"{first}, {start.year}{DASH}{end:%b} {end.day}, {end.year}"
        if start == end:
            text = first
        elif start.month == end.month:
            text = f"{first}{DASH}{end.day}"
        else:
            text = f"{first}{DASH}{end:%b} {end.day}"
        return f"{text}, {end.year}" if show_year else text


def previous_same_length(period: Period) -> Period:
    """The period of as many days that ends the day before ``period`` starts."""
    end = period.start - timedelta(days=1)
    return Period(end - timedelta(days=period.days - 1), end)


def previous_calendar(period: Period) -> Period | None:
    """The same days of the previous calendar period, for a calendar range: whole months →
    as many whole months just before (all of March → all of February); days 1 to N of one
    month (this month to date) → days 1 to N of the month before, clamped to its last day
    (Mar 1-30 → Feb 1-28; this month on the 1st → the 1st of the month before). None for
    any other range."""
    months = period.whole_months
    if months:
        start = months_before(period.start, months)
        return Period(start, month_last_day(months_before(period.start, 1)))
    same_month = (period.start.year, period.start.month) == (period.end.year, period.end.month)
    if period.start.day == 1 and same_month:
        start = months_before(period.start, 1)
        last = month_last_day(start)
        return Period(start, start.replace(day=min(period.end.day, last.day)))
    return None


def comparison_period(period: Period, *, quick: str | None = None) -> Period:
    """What ``period`` is compared with: the same days of the previous calendar period for a
    calendar range, otherwise the same number of days just before. The quick ranges "7d" and
    "30d" are rolling (always the days just before, even when they start on a 1st). One day
    (the quick range "today", or any single day not asked for as "this month") → the day
    before: the pages count whole UTC days (the roll-ups have no hours), so today so far is
    compared with all of yesterday, and the label says so."""
    rolling = quick in ("today", "7d", "30d")
    if rolling or (period.days == 1 and quick not in ("month", "last-month")):
        return previous_same_length(period)
    return previous_calendar(period) or previous_same_length(period)


def comparison_label(period: Period, previous: Period, *, today: date) -> str:
    """``vs Nov 1-7``; ``vs all of Dec 6`` for today against the whole day before."""
    text = previous.label(this_year=today.year)
    whole_day = period.days == 1 and period.end == today
    return f"vs all of {text}" if whole_day else f"vs {text}"


# --- Quick ranges ------------------------------------------------------------------------------

QUICK_RANGES = {
    "today": "Today",
    "7d": "7 d",
    "30d": "30 d",
    "month": "This month",
    "last-month": "Last month",
}


def quick_range(name: str, *, today: date) -> Period:
    """The period a quick range names, ``today`` being the UTC date (KeyError: no such name)."""
    if name == "today":
        return Period(today, today)
    if name == "7d":
        return Period(today - timedelta(days=6), today)
    if name == "30d":
        return Period(today - timedelta(days=29), today)
    if name == "month":
        return Period(today.replace(day=1), today)
    if name == "last-month":
        start = months_before(today, 1)
        return Period(start, month_last_day(start))
    raise KeyError(name)


def quick_range_of(period: Period, *, today: date) -> str | None:
    """The first quick range that is exactly ``period`` (None: it is none of them)."""
    for name in QUICK_RANGES:
        if quick_range(name, today=today) == period:
            return name
    return None


# --- Changes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A figure of a period against the same figure of the period it is compared with."""

    current: int | float | Decimal | None
    previous: int | float | Decimal | None

    @property
    def ratio(self) -> Decimal | None:
        """(current - previous) / previous; None when either is unknown or previous is 0."""
        if self.current is None or self.previous is None or not self.previous:
            return None
        current, previous = Decimal(str(self.current)), Decimal(str(self.previous))
        return (current - previous) / previous

    @property
    def text(self) -> str:
        """``+12.5 %``, ``-72.0 %``, ``0.0 %``; ``—`` when the previous figure is 0."""
        ratio = self.ratio
        if ratio is None:
            return "—"
        percent = (abs(ratio) * 100).quantize(Decimal("0.1"))
        sign = "" if not percent else ("+" if ratio > 0 else "-")
        return f"{sign}{percent:,.1f} %"
