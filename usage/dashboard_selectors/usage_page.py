"""The usage page's reads: its filters, and the totals per provider, model and month."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncMonth

from billing.selectors import subscriptions_current
from usage.dashboard_selectors.all_users import AllUsersDays, all_users_days
from usage.dashboard_selectors.totals import _SUMS, Totals, _summed, _totals
from usage.models import AIUsageDaily, AIUsageMonthly


@dataclass(frozen=True)
class UsageFilter:
    """The usage page's filters; ``end`` inclusive; None: no filter."""

    start: date
    end: date
    provider_id: int | None = None
    model_id: int | None = None
    tier_id: int | None = None
    user_email: str | None = None

    @property
    def only_period(self) -> bool:
        return not (self.provider_id or self.model_id or self.tier_id or self.user_email)


def _filtered_daily(flt: UsageFilter) -> QuerySet[AIUsageDaily]:
    rows = AIUsageDaily.objects.filter(usage_date__range=(flt.start, flt.end))
    if flt.provider_id:
        rows = rows.filter(provider_id=flt.provider_id)
    if flt.model_id:
        rows = rows.filter(model_id=flt.model_id)
    if flt.user_email:
        rows = rows.filter(user__email=flt.user_email.strip().lower())
    if flt.tier_id:
        rows = rows.filter(
            Exists(subscriptions_current(user_id=OuterRef("user_id")).filter(tier_id=flt.tier_id))
        )
    return rows


@dataclass(frozen=True)
class Row:
    """One line of a usage table: a provider, a model or a month, and its totals."""

    key: str
    totals: Totals


def _grouped(flt: UsageFilter, days: AllUsersDays | None, *keys: str) -> list[dict]:
    """The counters the filter asks for, summed by ``keys``: every user's (``days``, read
    when not given) when it asks only for a period, else the filtered per-user rows."""
    if flt.only_period:
        return (days or all_users_days(flt.start, flt.end)).grouped(*keys)
    return _summed(_filtered_daily(flt), *keys)


def provider_comparison(*, flt: UsageFilter, days: AllUsersDays | None = None) -> list[Row]:
    rows = sorted(
        _grouped(flt, days, "provider__name"),
        key=lambda row: (-(row["requests"] or 0), row["provider__name"]),
    )
    return [Row(row["provider__name"], _totals(row)) for row in rows]


def model_popularity(
    *, flt: UsageFilter, limit: int | None = None, days: AllUsersDays | None = None
) -> list[Row]:
    """Models by requests (``idx_model_popularity``); ``limit``: the top ones only."""
    rows = sorted(
        _grouped(flt, days, "model__display_name", "provider__name"),
        key=lambda row: (-(row["requests"] or 0), row["model__display_name"]),
    )
    if limit:
        rows = rows[:limit]
    return [
        Row(f"{row['model__display_name']} ({row['provider__name']})", _totals(row)) for row in rows
    ]


def _whole_months(flt: UsageFilter) -> bool:
    last_day = calendar.monthrange(flt.end.year, flt.end.month)[1]
    return flt.start.day == 1 and flt.end.day == last_day


def cost_by_month(*, flt: UsageFilter, days: AllUsersDays | None = None) -> list[Row]:
    """Totals per month, oldest first: from ``ai_usage_monthly`` when only a period of whole
    months is asked for; for another period, every user's daily totals summed by month (users:
    who used anything in the month); with other filters, the filtered daily rows."""
    if flt.only_period and _whole_months(flt):
        rows = (
            AIUsageMonthly.objects.filter(
                Q(year__gt=flt.start.year) | Q(year=flt.start.year, month__gte=flt.start.month),
                Q(year__lt=flt.end.year) | Q(year=flt.end.year, month__lte=flt.end.month),
            )
            .values("year", "month")
            .annotate(**_SUMS, users=Count("user_id"))
            .order_by("year", "month")
        )
        return [Row(f"{row['year']}-{row['month']:02d}", _totals(row)) for row in rows]
    if flt.only_period:
        # Every user's part of each month: the totals summed by month, and for the users, who
        # used anything in the month (ai_usage_monthly, one row per user and month).
        by_day = (days or all_users_days(flt.start, flt.end)).grouped("usage_date")
        months = AllUsersDays(
            [{**row, "period": row["usage_date"].replace(day=1)} for row in by_day]
        ).grouped("period")
        users = {
            (row["year"], row["month"]): row["users"]
            for row in AIUsageMonthly.objects.filter(
                Q(year__gt=flt.start.year) | Q(year=flt.start.year, month__gte=flt.start.month),
                Q(year__lt=flt.end.year) | Q(year=flt.end.year, month__lte=flt.end.month),
            )
            .values("year", "month")
            .annotate(users=Count("user_id"))
            .order_by()
        }
        return [
            Row(
                row["period"].strftime("%Y-%m"),
                _totals(row, users=users.get((row["period"].year, row["period"].month), 0)),
            )
            for row in sorted(months, key=lambda row: row["period"])
        ]
    rows = (
        _filtered_daily(flt)
        .annotate(period=TruncMonth("usage_date"))
        .values("period")
        .annotate(**_SUMS, users=Count("user_id", distinct=True))
        .order_by("period")
    )
    return [Row(row["period"].strftime("%Y-%m"), _totals(row)) for row in rows]
