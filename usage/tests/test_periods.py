"""The period math of usage.dashboard_selectors.periods: quick ranges, the period a range is
compared with (same length just before, or the same days of the previous calendar period),
labels and changes. Pure functions: no database."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from usage.dashboard_selectors.periods import (
    QUICK_RANGES,
    Change,
    Period,
    comparison_label,
    comparison_period,
    month_last_day,
    months_before,
    previous_calendar,
    previous_same_length,
    quick_range,
    quick_range_of,
    today_utc,
)


def P(start: str, end: str) -> Period:
    return Period(date.fromisoformat(start), date.fromisoformat(end))


# --- Period ------------------------------------------------------------------------------------


def test_a_period_counts_both_ends_and_refuses_to_run_backwards():
    assert P("2026-12-01", "2026-12-07").days == 7
    assert P("2026-12-07", "2026-12-07").days == 1
    with pytest.raises(ValueError):
        P("2026-12-08", "2026-12-07")


@pytest.mark.parametrize(
    ("period", "months"),
    [
        (P("2026-03-01", "2026-03-31"), 1),
        (P("2024-02-01", "2024-02-29"), 1),
        (P("2025-02-01", "2025-02-28"), 1),
        (P("2025-11-01", "2026-02-28"), 4),
        (P("2026-03-01", "2026-03-30"), 0),
        (P("2026-03-02", "2026-03-31"), 0),
        (P("2023-02-01", "2023-02-28"), 1),
    ],
)
def test_whole_months(period, months):
    assert period.whole_months == months


def test_month_helpers_cross_years_and_leap_days():
    assert month_last_day(date(2024, 2, 10)) == date(2024, 2, 29)
    assert month_last_day(date(2100, 2, 1)) == date(2100, 2, 28)  # not a leap year
    assert month_last_day(date(2000, 2, 1)) == date(2000, 2, 29)
    assert months_before(date(2026, 1, 15), 1) == date(2025, 12, 1)
    assert months_before(date(2026, 3, 31), 13) == date(2025, 2, 1)
    assert months_before(date(2026, 12, 7), 0) == date(2026, 12, 1)


# --- Comparison ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "quick", "expected"),
    [
        # This month to date: the same days of last month, not all of it.
        (P("2026-12-01", "2026-12-07"), None, P("2026-11-01", "2026-11-07")),
        (P("2026-12-01", "2026-12-07"), "month", P("2026-11-01", "2026-11-07")),
        # The same range as "7 d" is rolling: the 7 days just before.
        (P("2026-12-01", "2026-12-07"), "7d", P("2026-11-24", "2026-11-30")),
        # A whole month: the whole month before, whatever their lengths.
        (P("2026-03-01", "2026-03-31"), None, P("2026-02-01", "2026-02-28")),
        (P("2024-03-01", "2024-03-31"), "last-month", P("2024-02-01", "2024-02-29")),
        (P("2026-02-01", "2026-02-28"), None, P("2026-01-01", "2026-01-31")),
        (P("2026-01-01", "2026-01-31"), None, P("2025-12-01", "2025-12-31")),
        # Whole months: as many whole months before.
        (P("2026-01-01", "2026-03-31"), None, P("2025-10-01", "2025-12-31")),
        (P("2025-01-01", "2025-12-31"), None, P("2024-01-01", "2024-12-31")),
        # Month to date past the end of the month before: clamped to its last day.
        (P("2026-03-01", "2026-03-30"), "month", P("2026-02-01", "2026-02-28")),
        (P("2024-03-01", "2024-03-30"), "month", P("2024-02-01", "2024-02-29")),
        (P("2026-05-01", "2026-05-31"), "month", P("2026-04-01", "2026-04-30")),
        (P("2027-01-01", "2027-01-05"), "month", P("2026-12-01", "2026-12-05")),
        # This month on its 1st: the 1st of the month before; any other single day: the day
        # before (today against yesterday).
        (P("2026-03-01", "2026-03-01"), "month", P("2026-02-01", "2026-02-01")),
        (P("2026-03-01", "2026-03-01"), "today", P("2026-02-28", "2026-02-28")),
        (P("2026-03-01", "2026-03-01"), None, P("2026-02-28", "2026-02-28")),
        (P("2026-01-01", "2026-01-01"), "today", P("2025-12-31", "2025-12-31")),
        (P("2024-03-01", "2024-03-01"), "today", P("2024-02-29", "2024-02-29")),
        # Any other range: as many days just before, across months and years.
        (P("2026-12-05", "2026-12-11"), None, P("2026-11-28", "2026-12-04")),
        (P("2026-01-03", "2026-01-09"), None, P("2025-12-27", "2026-01-02")),
        (P("2024-03-05", "2024-04-03"), "30d", P("2024-02-04", "2024-03-04")),
        (P("2025-11-15", "2026-11-15"), None, P("2024-11-14", "2025-11-14")),
    ],
)
def test_comparison_period(period, quick, expected):
    assert comparison_period(period, quick=quick) == expected


def test_previous_calendar_is_none_outside_calendar_ranges():
    assert previous_calendar(P("2026-12-02", "2026-12-07")) is None
    assert previous_calendar(P("2026-11-01", "2026-12-07")) is None  # not whole months
    assert previous_same_length(P("2026-11-01", "2026-12-07")) == P("2026-09-25", "2026-10-31")


@given(
    start=st.dates(min_value=date(1970, 1, 1), max_value=date(2999, 1, 1)),
    length=st.integers(min_value=1, max_value=366),
    quick=st.sampled_from([None, *QUICK_RANGES]),
)
def test_every_comparison_ends_before_the_period_and_is_no_longer_than_a_year(start, length, quick):
    period = Period(start, start + timedelta(days=length - 1))
    previous = comparison_period(period, quick=quick)
    assert previous.end < period.start
    assert previous.days <= 366
    # Calendar or not, it starts at most a year (and a day) before.
    assert (period.start - previous.start).days <= 367
    if previous_calendar(period) is None or quick in ("today", "7d", "30d"):
        assert previous == previous_same_length(period)
        assert previous.days == period.days
        assert previous.end == period.start - timedelta(days=1)


# --- Quick ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "today", "expected"),
    [
        ("today", "2026-12-07", P("2026-12-07", "2026-12-07")),
        ("7d", "2026-12-07", P("2026-12-01", "2026-12-07")),
        ("7d", "2026-01-03", P("2025-12-28", "2026-01-03")),
        ("30d", "2026-03-01", P("2026-01-31", "2026-03-01")),
        ("30d", "2024-03-01", P("2024-02-01", "2024-03-01")),
        ("month", "2026-12-07", P("2026-12-01", "2026-12-07")),
        ("month", "2026-12-01", P("2026-12-01", "2026-12-01")),
        ("last-month", "2026-12-07", P("2026-11-01", "2026-11-30")),
        ("last-month", "2026-01-31", P("2025-12-01", "2025-12-31")),
        ("last-month", "2024-03-31", P("2024-02-01", "2024-02-29")),
    ],
)
def test_quick_ranges(name, today, expected):
    assert quick_range(name, today=date.fromisoformat(today)) == expected


def test_an_unknown_quick_range_is_refused():
    with pytest.raises(KeyError):
        quick_range("year", today=date(2026, 12, 7))


def test_the_quick_range_a_period_is():
    today = date(2026, 12, 20)
    for name in QUICK_RANGES:
        assert quick_range_of(quick_range(name, today=today), today=today) == name
    assert quick_range_of(P("2026-12-02", "2026-12-07"), today=today) is None
    assert quick_range_of(P("2026-12-01", "2026-12-07"), today=date(2026, 12, 7)) == "7d"
    # Where two are the same days, the first in the list names it.
    assert quick_range_of(P("2026-12-01", "2026-12-30"), today=date(2026, 12, 30)) == "30d"


def test_today_is_the_utc_date_whatever_the_time_zone():
    new_york = timezone(timedelta(hours=-5))
    tokyo = timezone(timedelta(hours=9))
    assert today_utc(datetime(2026, 12, 7, 21, 30, tzinfo=new_york)) == date(2026, 12, 8)
    assert today_utc(datetime(2026, 12, 8, 8, 0, tzinfo=tokyo)) == date(2026, 12, 7)
    assert today_utc(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == date(2026, 12, 31)
    assert isinstance(today_utc(), date)


# --- Labels and changes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "this_year", "label"),
    [
        (P("2026-11-01", "2026-11-07"), 2026, "Nov 1\u20137"),
        (P("2026-11-28", "2026-12-04"), 2026, "Nov 28\u2013Dec 4"),
        (P("2026-12-06", "2026-12-06"), 2026, "Dec 6"),
        (P("2025-11-01", "2025-11-07"), 2026, "Nov 1\u20137, 2025"),
        (P("2025-12-29", "2026-01-04"), 2026, "Dec 29, 2025\u2013Jan 4, 2026"),
        (P("2026-02-01", "2026-02-28"), None, "Feb 1\u201328"),
    ],
)
def test_labels(period, this_year, label):
    assert period.label(this_year=this_year) == label


def test_comparison_labels_say_which_days():
    today = date(2026, 12, 7)
    month = P("2026-12-01", "2026-12-07")
    assert comparison_label(month, comparison_period(month, quick="month"), today=today) == (
        "vs Nov 1\u20137"
    )
    day = P("2026-12-07", "2026-12-07")
    assert comparison_label(day, comparison_period(day), today=today) == "vs all of Dec 6"
    past_day = P("2026-12-03", "2026-12-03")
    assert comparison_label(past_day, comparison_period(past_day), today=today) == "vs Dec 2"


@pytest.mark.parametrize(
    ("current", "previous", "text"),
    [
        (Decimal("99.86"), Decimal("356.77"), "-72.0 %"),
        (Decimal("99.86"), Decimal("80.00"), "+24.8 %"),
        (5, 5, "0.0 %"),
        (5, 0, "\u2014"),
        (0, 0, "\u2014"),
        (0, 4, "-100.0 %"),
        (None, 4, "\u2014"),
        (4, None, "\u2014"),
        (2.5, 2.0, "+25.0 %"),
        (1000001, 1000000, "0.0 %"),
        (30000, 100, "+29,900.0 %"),
    ],
)
def test_changes(current, previous, text):
    assert Change(current, previous).text == text
