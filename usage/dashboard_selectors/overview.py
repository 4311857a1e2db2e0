"""The overview page's reads: the KPIs of today and the months, the month's biggest spenders
and recent security events (its open quota alerts are billing's: ``billing.selectors``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, Q

from accounts.models import AuditLog
from usage.dashboard_selectors.all_users import AllUsersDays
from usage.dashboard_selectors.periods import previous_month
from usage.dashboard_selectors.totals import _SUMS, Totals, _totals
from usage.models import AIUsageDaily, AIUsageMonthly

SECURITY_SEVERITIES = ("warning", "critical")


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
