"""The overview page's reads: the KPIs of today and of the month to date, each against the
same days of the period before, the month's biggest spenders
and recent security events (its open quota alerts are billing's: ``billing.selectors``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from accounts.models import AuditLog
from usage.dashboard_selectors.all_users import AllUsersDays, all_users_days
from usage.dashboard_selectors.comparison import Compared, compared_in_days, users_in
from usage.dashboard_selectors.periods import Period, comparison_period, quick_range
from usage.models import AIUsageMonthly

SECURITY_SEVERITIES = ("warning", "critical")


@dataclass(frozen=True)
class OverviewKpis:
    """Today against yesterday, and this month to date against the same days of last month
    (Dec 1-7 against Nov 1-7, not all of November)."""

    today: Compared
    month: Compared

    @property
    def periods(self) -> tuple[Period, ...]:
        """Every day these cover: what the overview reads once."""
        return (self.today.previous, self.today.period, self.month.previous, self.month.period)


def overview_periods(*, today: date) -> tuple[Period, Period, Period, Period]:
    """Today, yesterday, this month to date and the same days of last month."""
    day = Period(today, today)
    month = quick_range("month", today=today)
    return (
        day,
        comparison_period(day, quick="today"),
        month,
        comparison_period(month, quick="month"),
    )


def overview_kpis(*, today: date, days: AllUsersDays | None = None) -> OverviewKpis:
    """Today's and this month's totals against the periods they are compared with, from every
    user's days (``days``, read when not given; it must cover all four periods) and one count
    of each period's active users (``ai_usage_daily``)."""
    day, yesterday, month, month_before = overview_periods(today=today)
    if days is None:
        days = all_users_days(month_before.start, today)
    users = users_in(day, yesterday, month, month_before)
    return OverviewKpis(
        today=compared_in_days(days, day, yesterday, today=today, users=users[0:2]),
        month=compared_in_days(days, month, month_before, today=today, users=users[2:4]),
    )


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


def security_events(*, since: datetime, limit: int = 10) -> list[AuditLog]:
    """The newest warnings and critical audit events since ``since``
    (``idx_audit_logs_security``)."""
    return list(
        AuditLog.objects.filter(severity__in=SECURITY_SEVERITIES, created_at__gte=since)
        .select_related("user", "actor")
        .order_by("-created_at")[:limit]
    )
