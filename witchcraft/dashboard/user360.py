"""Reads for the staff dashboard's user page (``/dashboard/users/<id>/``): plain data.

Every read goes through the user's own indexed rows (the roll-ups ``ai_usage_daily`` and
``ai_usage_monthly`` by their keys, sessions, payments, alerts and audit events by user) and
every list is bounded; ``ai_usage_requests`` is never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum

from accounts.models import AuditLog, User
from agents.models import AgentSession
from billing.models import CURRENT_STATUSES, PaymentHistory, UsageAlert, UserSubscription
from usage.dashboard_selectors import Series
from usage.models import AIUsageDaily, AIUsageMonthly

CHART_DAYS = 30
HISTORY_MONTHS = 12
SESSIONS_SHOWN = 10
PAYMENTS_SHOWN = 10
ALERTS_SHOWN = 10
AUDIT_SHOWN = 20


@dataclass(frozen=True)
class Quota:
    tokens_used: int
    tokens_limit: int
    cost_used: Decimal
    cost_limit: Decimal
    period_start: datetime
    period_end: datetime

    @staticmethod
    def _percent(used, limit) -> int:
        return int(100 * used / limit) if limit else 0

    @property
    def tokens_percent(self) -> int:
        return self._percent(self.tokens_used, self.tokens_limit)

    @property
    def cost_percent(self) -> int:
        return self._percent(self.cost_used, self.cost_limit)

    @property
    def tokens_bar(self) -> int:
        """The tokens percent for a <progress max="100"> (over 100 % is drawn full)."""
        return min(self.tokens_percent, 100)

    @property
    def cost_bar(self) -> int:
        return min(self.cost_percent, 100)


@dataclass(frozen=True)
class UserSummary:
    id: int
    email: str
    full_name: str
    date_joined: datetime
    last_login: datetime | None
    email_verified_at: datetime | None
    is_active: bool
    is_staff: bool
    is_superuser: bool
    deleted_at: datetime | None
    has_profile: bool
    company: str
    timezone: str
    locale: str
    quota: Quota | None


def user_with_profile(*, user_id: int) -> User | None:
    """The user with their profile and quota (one query); None for an unknown id."""
    return User.objects.select_related("profile", "quota").filter(pk=user_id).first()


def user_summary(*, user: User) -> UserSummary:
    """The header, profile and quota of a user read by ``user_with_profile``."""
    profile = getattr(user, "profile", None)
    quota = getattr(user, "quota", None)
    return UserSummary(
        id=user.pk,
        email=user.email,
        full_name=user.full_name,
        date_joined=user.date_joined,
        last_login=user.last_login,
        email_verified_at=user.email_verified_at,
        is_active=user.is_active,
        is_staff=user.is_staff,
        is_superuser=user.is_superuser,
        deleted_at=user.deleted_at,
        has_profile=profile is not None,
        company=profile.company if profile else "",
        timezone=profile.timezone if profile else "",
        locale=profile.locale if profile else "",
        quota=Quota(
            tokens_used=quota.tokens_used,
            tokens_limit=quota.tokens_limit,
            cost_used=quota.cost_used,
            cost_limit=quota.cost_limit,
            period_start=quota.period_start,
            period_end=quota.period_end,
        )
        if quota
        else None,
    )


@dataclass(frozen=True)
class Plan:
    tier: str
    status: str
    billing_cycle: str
    period_start: datetime
    period_end: datetime
    cancel_at_period_end: bool


def current_plan(*, user_id: int) -> Plan | None:
    """The user's current subscription (at most one is current); None without one."""
    sub = (
        UserSubscription.objects.filter(user_id=user_id, status__in=CURRENT_STATUSES)
        .select_related("tier")
        .order_by("-created_at")
        .first()
    )
    if sub is None:
        return None
    return Plan(
        tier=sub.tier.name,
        status=sub.get_status_display(),
        billing_cycle=sub.get_billing_cycle_display(),
        period_start=sub.current_period_start,
        period_end=sub.current_period_end,
        cancel_at_period_end=sub.cancel_at_period_end,
    )


@dataclass(frozen=True)
class DailyUsage:
    tokens: Series
    cost: Series
    total_tokens: int
    total_cost: Decimal


def daily_usage(*, user_id: int, end: date, days: int = CHART_DAYS) -> DailyUsage:
    """Tokens and cost per UTC day over ``days`` days ending ``end`` (days without usage as
    0), from ``ai_usage_daily`` through its key (user, usage_date, ...)."""
    start = end - timedelta(days=days - 1)
    rows = (
        AIUsageDaily.objects.filter(user_id=user_id, usage_date__range=(start, end))
        .values("usage_date")
        .annotate(tokens=Sum("total_tokens"), cost=Sum("cost"))
        .order_by()
    )
    by_day = {row["usage_date"]: row for row in rows}
    all_days = [start + timedelta(days=offset) for offset in range(days)]
    labels = [day.isoformat() for day in all_days]
    tokens = [by_day[day]["tokens"] if day in by_day else 0 for day in all_days]
    costs = [by_day[day]["cost"] if day in by_day else Decimal(0) for day in all_days]
    return DailyUsage(
        tokens=Series(labels, {"Tokens": tokens}),
        cost=Series(labels, {"Cost": [float(cost) for cost in costs]}),
        total_tokens=sum(tokens),
        total_cost=sum(costs, Decimal(0)),
    )


@dataclass(frozen=True)
class MonthUsage:
    year: int
    month: int
    requests: int
    errors: int
    tokens: int
    cost: Decimal

    @property
    def label(self) -> str:
        return f"{self.year}-{self.month:02d}"


def monthly_history(*, user_id: int, today: date, months: int = HISTORY_MONTHS) -> list[MonthUsage]:
    """The user's last ``months`` calendar months (this one included) from ``ai_usage_monthly``
    (its key: user, year, month), newest first; months without usage are left out."""
    index = today.year * 12 + today.month - 1 - (months - 1)
    first_year, first_month = divmod(index, 12)
    first_month += 1
    rows = (
        AIUsageMonthly.objects.filter(user_id=user_id)
        .filter(Q(year__gt=first_year) | Q(year=first_year, month__gte=first_month))
        .order_by("-year", "-month")
        .values("year", "month", "request_count", "error_count", "total_tokens", "cost")[:months]
    )
    return [
        MonthUsage(
            year=row["year"],
            month=row["month"],
            requests=row["request_count"],
            errors=row["error_count"],
            tokens=row["total_tokens"],
            cost=row["cost"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class SessionRow:
    id: int
    title: str
    agent_name: str
    model: str
    is_active: bool
    started_at: datetime
    last_activity_at: datetime
    message_count: int
    total_tokens: int
    total_cost: Decimal


def recent_sessions(*, user_id: int, limit: int = SESSIONS_SHOWN) -> list[SessionRow]:
    """The user's latest agent sessions (``agent_sessions_user_started``)."""
    rows = (
        AgentSession.objects.filter(user_id=user_id)
        .order_by("-started_at", "-id")
        .values(
            "id",
            "title",
            "agent_name",
            "model__display_name",
            "is_active",
            "started_at",
            "last_activity_at",
            "message_count",
            "total_tokens",
            "total_cost",
        )[:limit]
    )
    return [
        SessionRow(
            id=row["id"],
            title=row["title"],
            agent_name=row["agent_name"],
            model=row["model__display_name"] or "",
            is_active=row["is_active"],
            started_at=row["started_at"],
            last_activity_at=row["last_activity_at"],
            message_count=row["message_count"],
            total_tokens=row["total_tokens"],
            total_cost=row["total_cost"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class PaymentRow:
    created_at: datetime
    amount: Decimal
    currency: str
    status: str
    description: str
    payment_provider: str


def recent_payments(*, user_id: int, limit: int = PAYMENTS_SHOWN) -> list[PaymentRow]:
    """The user's latest payments (``payment_history_user``)."""
    rows = PaymentHistory.objects.filter(user_id=user_id).order_by("-created_at", "-id")[:limit]
    return [
        PaymentRow(
            created_at=row.created_at,
            amount=row.amount,
            currency=row.currency,
            status=row.get_status_display(),
            description=row.description,
            payment_provider=row.payment_provider,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class AlertRow:
    triggered_at: datetime
    alert_type: str
    metric: str
    threshold_percent: int
    value_at_trigger: Decimal
    limit_at_trigger: Decimal
    state: str


def recent_alerts(*, user_id: int, limit: int = ALERTS_SHOWN) -> list[AlertRow]:
    """The user's latest quota alerts (``usage_alerts_user``)."""
    rows = UsageAlert.objects.filter(user_id=user_id).order_by("-triggered_at", "-id")[:limit]
    return [
        AlertRow(
            triggered_at=row.triggered_at,
            alert_type=row.get_alert_type_display(),
            metric=row.get_metric_display(),
            threshold_percent=row.threshold_percent,
            value_at_trigger=row.value_at_trigger,
            limit_at_trigger=row.limit_at_trigger,
            state="resolved"
            if row.resolved_at
            else "acknowledged"
            if row.acknowledged_at
            else "open",
        )
        for row in rows
    ]


@dataclass(frozen=True)
class AuditRow:
    created_at: datetime
    event_type: str
    severity: str
    actor: str
    ip: str


def recent_audit(*, user_id: int, limit: int = AUDIT_SHOWN) -> list[AuditRow]:
    """The latest audit events about the user (the user foreign key's index), with who acted:
    "self", another user's email, or "system" when no one did."""
    rows = (
        AuditLog.objects.filter(user_id=user_id)
        .order_by("-created_at", "-id")
        .values("created_at", "event_type", "severity", "actor_id", "actor__email", "ip")[:limit]
    )
    return [
        AuditRow(
            created_at=row["created_at"],
            event_type=row["event_type"],
            severity=row["severity"],
            actor="system"
            if row["actor_id"] is None
            else "self"
            if row["actor_id"] == user_id
            else row["actor__email"],
            ip=row["ip"] or "",
        )
        for row in rows
    ]
