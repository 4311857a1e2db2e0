"""Reads for the staff dashboard's overview and usage pages: plain data.

Totals and charts read the roll-ups (``ai_usage_daily``, ``ai_usage_monthly``) through their
named indexes, never ``ai_usage_requests``; every list is bounded. What covers every user reads
the all-users totals (``ai_usage_daily_totals``) for the days they cover and ``ai_usage_daily``
only for the days after (today), so its time does not grow with the number of users.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from accounts.models import AuditLog
from billing.models import CURRENT_STATUSES, UsageAlert, UserSubscription
from usage.models import AIUsageDaily, AIUsageDailyTotal, AIUsageMonthly, AIUsageTotalsState

MAX_PERIOD_DAYS = 366
SECURITY_SEVERITIES = ("warning", "critical")

_SUMS = {
    "requests": Sum("request_count"),
    "errors": Sum("error_count"),
    "tokens": Sum("total_tokens"),
    "cost": Sum("cost"),
    "latency_sum": Sum("latency_ms_sum"),
    "latency_count": Sum("latency_count"),
}


@dataclass(frozen=True)
class Totals:
    """Summed roll-up counters."""

    requests: int = 0
    errors: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_sum: int = 0
    latency_count: int = 0
    users: int = 0

    @property
    def average_latency_ms(self) -> int | None:
        return round(self.latency_sum / self.latency_count) if self.latency_count else None

    @property
    def error_rate(self) -> float | None:
        """Percentage of requests that did not succeed; None without requests."""
        return 100 * self.errors / self.requests if self.requests else None


def _totals(row: dict, *, users: int = 0) -> Totals:
    return Totals(
        requests=row.get("requests") or 0,
        errors=row.get("errors") or 0,
        tokens=row.get("tokens") or 0,
        cost=row.get("cost") or Decimal(0),
        latency_sum=row.get("latency_sum") or 0,
        latency_count=row.get("latency_count") or 0,
        users=users if users else row.get("users") or 0,
    )


DAY_KEYS = ("usage_date", "provider__name", "model__display_name")


@dataclass(frozen=True)
class AllUsersDays:
    """Every user's counters per UTC day, provider and model over a period (the all-users
    totals, and ai_usage_daily for the days after them), read once for a page: each of its
    tables and charts groups these rows (at most days x models) in Python. ``users_by_day``:
    the users active on each day read from ai_usage_daily (today, at least)."""

    rows: list[dict]
    users_by_day: dict[date, int] = field(default_factory=dict)
    today_as_of: datetime | None = None  # today's rows are as of then (the minute's refresh)

    def grouped(self, *keys: str) -> list[dict]:
        merged: dict[tuple, dict] = {}
        for row in self.rows:
            key = tuple(row[name] for name in keys)
            into = merged.get(key)
            if into is None:
                merged[key] = {**{name: row[name] for name in keys}, **_sums_of(row)}
            else:
                for name in _SUMS:
                    into[name] += row[name] or 0
        return list(merged.values())


def _sums_of(row: dict) -> dict:
    return {name: row[name] or 0 for name in _SUMS}


TODAY_FRESH = timedelta(minutes=2)


def all_users_days(start: date, end: date, *, count_users: bool = False) -> AllUsersDays:
    """Every user's counters of ``start`` to ``end`` (inclusive) per day, provider and model:
    the all-users totals for the days they cover, and for today as of its last refresh (the
    job worker's, every minute) while that is under TODAY_FRESH old; ``ai_usage_daily`` for
    the other days (one query, which with ``count_users`` also counts each of those days'
    users)."""
    state = AIUsageTotalsState.objects.values(
        "covered_before", "today_date", "today_as_of", "today_users"
    ).first()
    rows: list[dict] = []
    if state is not None and start < state["covered_before"]:
        last_covered = min(end, state["covered_before"] - timedelta(days=1))
        rows += _summed(
            AIUsageDailyTotal.objects.filter(usage_date__range=(start, last_covered)), *DAY_KEYS
        )
        start = state["covered_before"]
    users_by_day: dict[date, int] = {}
    today, as_of = today_utc(), None
    live = [(start, end)]
    if (
        start <= today <= end
        and state is not None
        and state["today_date"] == today
        and state["today_as_of"] is not None
        and state["today_as_of"] >= datetime.now(UTC) - TODAY_FRESH
    ):
        rows += _summed(AIUsageDailyTotal.objects.filter(usage_date=today), *DAY_KEYS)
        users_by_day[today] = state["today_users"]
        as_of = state["today_as_of"]
        live = [(start, today - timedelta(days=1)), (today + timedelta(days=1), end)]
    for first, last in live:
        if first <= last:
            live_rows, live_users = _live_days(first, last, count_users=count_users)
            rows += live_rows
            users_by_day |= live_users
    return AllUsersDays(rows, users_by_day, as_of)


# The days the totals do not cover yet, per day, provider and model, and (with the users) each
# day's users, in one scan of their ai_usage_daily rows (GROUPING SETS: the ORM cannot say it).
_LIVE_DAYS = """
SELECT d.usage_date, p.name, m.display_name, {day_total},
       sum(d.request_count), sum(d.error_count), sum(d.total_tokens), sum(d.cost),
       sum(d.latency_ms_sum), sum(d.latency_count), {users}
  FROM ai_usage_daily d
  JOIN ai_providers p ON p.id = d.provider_id
  JOIN ai_models m ON m.id = d.model_id
 WHERE d.usage_date BETWEEN %s AND %s
 GROUP BY {groups}
"""
_LIVE_DAYS_WITH_USERS = _LIVE_DAYS.format(
    day_total="GROUPING(p.name, m.display_name)",
    users="count(DISTINCT d.user_id)",
    groups="GROUPING SETS ((d.usage_date, p.name, m.display_name), (d.usage_date))",
)
_LIVE_DAYS_ONLY = _LIVE_DAYS.format(
    day_total="0", users="0", groups="d.usage_date, p.name, m.display_name"
)


def _live_days(start: date, end: date, *, count_users: bool) -> tuple[list[dict], dict[date, int]]:
    rows, users = [], {}
    with connection.cursor() as cursor:
        cursor.execute(_LIVE_DAYS_WITH_USERS if count_users else _LIVE_DAYS_ONLY, [start, end])
        for day, provider, model, day_total, *sums, day_users in cursor.fetchall():
            if day_total:
                users[day] = day_users
            else:
                rows.append(
                    {
                        "usage_date": day,
                        "provider__name": provider,
                        "model__display_name": model,
                        **dict(zip(_SUMS, sums, strict=True)),
                    }
                )
    return rows, users


def _summed(rows: QuerySet, *keys: str) -> list[dict]:
    """The counters of ``rows`` summed by ``keys``, in no order."""
    return list(rows.values(*keys).annotate(**_SUMS).order_by())


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


@dataclass(frozen=True)
class OverviewKpis:
    today: Totals
    this_month: Totals
    last_month: Totals


def overview_kpis(*, today: date, days: AllUsersDays | None = None) -> OverviewKpis:
    """Today's totals (``ai_usage_daily``; taken from ``days`` when it has read today), this
    and last month's (``ai_usage_monthly``)."""
    if days is not None and today in days.users_by_day:
        summed = AllUsersDays([r for r in days.rows if r["usage_date"] == today]).grouped()
        day = {**summed[0], "users": days.users_by_day[today]}
    else:
        day = AIUsageDaily.objects.filter(usage_date=today).aggregate(
            **_SUMS, users=Count("user_id", distinct=True)
        )
    last_year, last_month = previous_month(today.year, today.month)
    months = (
        AIUsageMonthly.objects.filter(
            Q(year=today.year, month=today.month) | Q(year=last_year, month=last_month)
        )
        .values("year", "month")
        .annotate(**_SUMS, users=Count("user_id"))
    )
    by_month = {(row["year"], row["month"]): _totals(row) for row in months}
    return OverviewKpis(
        today=_totals(day),
        this_month=by_month.get((today.year, today.month), Totals()),
        last_month=by_month.get((last_year, last_month), Totals()),
    )


@dataclass(frozen=True)
class Series:
    """A chart's data: labels on the x axis, one list of values per dataset."""

    labels: list[str]
    datasets: dict[str, list[float]]

    def chart(self, kind: str, *, stacked: bool = False, money: bool = False) -> dict:
        return {
            "type": kind,
            "labels": self.labels,
            "datasets": [{"label": name, "data": data} for name, data in self.datasets.items()],
            "stacked": stacked,
            "money": money,
        }


def daily_by_provider(
    *, start: date, end: date, days: AllUsersDays | None = None
) -> tuple[Series, Series]:
    """Daily tokens and daily cost per provider, ``start`` to ``end`` inclusive (every day,
    zeros included), from the all-users totals and ``ai_usage_daily`` (by
    ``idx_ai_usage_provider_comparison``) for the days after them."""
    rows = (days or all_users_days(start, end)).grouped("usage_date", "provider__name")
    calendar_days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    index = {day: n for n, day in enumerate(calendar_days)}
    tokens: dict[str, list[float]] = {}
    cost: dict[str, list[float]] = {}
    for row in rows:
        name = row["provider__name"]
        tokens.setdefault(name, [0] * len(calendar_days))[index[row["usage_date"]]] = row["tokens"]
        cost.setdefault(name, [0.0] * len(calendar_days))[index[row["usage_date"]]] = float(
            row["cost"]
        )
    labels = [day.isoformat() for day in calendar_days]
    return Series(labels, tokens), Series(labels, cost)


@dataclass(frozen=True)
class UserCost:
    user_id: int
    email: str
    full_name: str
    requests: int
    tokens: int
    cost: Decimal


def top_users_by_cost(*, year: int, month: int, limit: int = 10) -> list[UserCost]:
    """The month's biggest spenders (``idx_ai_usage_monthly_cost``)."""
    rows = (
        AIUsageMonthly.objects.filter(year=year, month=month, cost__gt=0)
        .order_by("-cost", "user_id")
        .values(
            "user_id", "user__email", "user__full_name", "request_count", "total_tokens", "cost"
        )[:limit]
    )
    return [
        UserCost(
            user_id=row["user_id"],
            email=row["user__email"],
            full_name=row["user__full_name"],
            requests=row["request_count"],
            tokens=row["total_tokens"],
            cost=row["cost"],
        )
        for row in rows
    ]


def open_alerts(*, limit: int = 10) -> list[UsageAlert]:
    """The newest unresolved quota alerts (``usage_alerts_open``), with their users."""
    return list(
        UsageAlert.objects.filter(resolved_at__isnull=True)
        .select_related("user")
        .order_by("-triggered_at", "-id")[:limit]
    )


def security_events(*, since: datetime, limit: int = 10) -> list[AuditLog]:
    """The newest warnings and critical audit events since ``since``
    (``idx_audit_logs_security``)."""
    return list(
        AuditLog.objects.filter(severity__in=SECURITY_SEVERITIES, created_at__gte=since)
        .select_related("user", "actor")
        .order_by("-created_at")[:limit]
    )


# --- The usage page -------------------------------------------------------------------------


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
            Exists(
                UserSubscription.objects.filter(
                    user_id=OuterRef("user_id"), status__in=CURRENT_STATUSES, tier_id=flt.tier_id
                )
            )
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


def today_utc() -> date:
    return datetime.now(UTC).date()
