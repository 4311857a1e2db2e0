"""Totals of a period against the period it is compared with (periods.comparison_period): the
staff overview's KPIs and the usage page's totals. Read from the roll-ups only: every user's
days (the all-users totals, ``ai_usage_daily`` after them), or the filtered ``ai_usage_daily``
rows when the usage page filters by more than the period."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from django.db.models import Count, Q

from usage.dashboard_selectors.all_users import AllUsersDays, all_users_days
from usage.dashboard_selectors.periods import Change, Period, comparison_label
from usage.dashboard_selectors.totals import _SUMS, Totals, _totals
from usage.dashboard_selectors.usage_page import UsageFilter, _filtered_daily
from usage.models import AIUsageDaily


@dataclass(frozen=True)
class Compared:
    """A period's totals (``now``) against those of the period it is compared with
    (``before``, covering ``previous``)."""

    period: Period
    previous: Period
    now: Totals
    before: Totals
    today: date

    @property
    def label(self) -> str:
        return comparison_label(self.period, self.previous, today=self.today)

    @property
    def users(self) -> Change:
        return Change(self.now.users, self.before.users)

    @property
    def requests(self) -> Change:
        return Change(self.now.requests, self.before.requests)

    @property
    def tokens(self) -> Change:
        return Change(self.now.tokens, self.before.tokens)

    @property
    def cost(self) -> Change:
        return Change(self.now.cost, self.before.cost)

    @property
    def error_rate(self) -> Change:
        return Change(self.now.error_rate, self.before.error_rate)

    @property
    def average_latency_ms(self) -> Change:
        return Change(self.now.average_latency_ms, self.before.average_latency_ms)


def days_between(days: AllUsersDays, start: date, end: date) -> AllUsersDays:
    """The part of ``days`` from ``start`` to ``end`` (inclusive)."""
    return AllUsersDays(
        [row for row in days.rows if start <= row["usage_date"] <= end],
        {day: n for day, n in days.users_by_day.items() if start <= day <= end},
        days.today_as_of,
    )


def _summed_days(days: AllUsersDays, *, users: int = 0) -> Totals:
    rows = days.grouped()
    return _totals(rows[0] if rows else {}, users=users)


def users_in(*periods: Period) -> list[int]:
    """The users active in each period (distinct ``ai_usage_daily`` users), in one query."""
    if not periods:
        return []
    counts = AIUsageDaily.objects.filter(
        usage_date__range=(min(p.start for p in periods), max(p.end for p in periods))
    ).aggregate(
        **{
            f"p{n}": Count(
                "user_id", distinct=True, filter=Q(usage_date__range=(period.start, period.end))
            )
            for n, period in enumerate(periods)
        }
    )
    return [counts[f"p{n}"] or 0 for n in range(len(periods))]


def compared_in_days(
    days: AllUsersDays, period: Period, previous: Period, *, today: date, users: tuple = (0, 0)
) -> Compared:
    """``period`` against ``previous``, both read from ``days`` (which must cover both)."""
    return Compared(
        period=period,
        previous=previous,
        now=_summed_days(days_between(days, period.start, period.end), users=users[0]),
        before=_summed_days(days_between(days, previous.start, previous.end), users=users[1]),
        today=today,
    )


def usage_page_comparison(
    *, flt: UsageFilter, previous: Period, today: date, days: AllUsersDays | None = None
) -> Compared:
    """The usage page's totals for ``flt`` against the same filter over ``previous``: every
    user's days (``days``: the period's, when already read) when only a period is asked for,
    else the filtered ``ai_usage_daily`` rows."""
    period = Period(flt.start, flt.end)
    if flt.only_period:
        now = _summed_days(days or all_users_days(flt.start, flt.end))
        before = _summed_days(all_users_days(previous.start, previous.end))
    else:
        now = _totals(_filtered_daily(flt).aggregate(**_SUMS))
        earlier = replace(flt, start=previous.start, end=previous.end)
        before = _totals(_filtered_daily(earlier).aggregate(**_SUMS))
    return Compared(period=period, previous=previous, now=now, before=before, today=today)
