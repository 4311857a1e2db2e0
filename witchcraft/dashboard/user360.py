"""Reads for the staff dashboard's user page (``/dashboard/users/<id>/``): plain data.

Composed from each domain's selectors (the roof names no domain's models). Every read goes
through the user's own indexed rows (the roll-ups ``ai_usage_daily`` and ``ai_usage_monthly``
by their keys, sessions, payments, alerts and audit events by user) and every list is bounded;
``ai_usage_requests`` is read only for this month's spend per API token, through its partial
index ``ai_usage_requests_token_spend`` (usage.drilldown.token_spend_this_month).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from accounts import selectors as account_selectors
from agents import dashboard_selectors as agent_selectors
from billing import selectors as billing_selectors
from usage.dashboard_selectors import Series
from usage.drilldown import TokenSpend, token_spend_this_month
from usage.me_selectors import usage_by_day_for_user
from usage.selectors import usage_monthly_for_user

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


def user_summary(*, user) -> UserSummary:
    """The header, profile and quota of a user read by ``billing.selectors.user_with_quota``."""
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
    sub = billing_selectors.subscription_current(user_id=user_id)
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
    by_day = usage_by_day_for_user(user_id=user_id, date_from=start, date_to=end)
    labels = [day.day.isoformat() for day in by_day]
    tokens = [day.usage.tokens for day in by_day]
    costs = [day.usage.cost for day in by_day]
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
    rows = usage_monthly_for_user(
        user_id=user_id, limit=months, since=date(first_year, first_month + 1, 1)
    )
    return [
        MonthUsage(
            year=row.year,
            month=row.month,
            requests=row.totals.requests,
            errors=row.totals.failures,
            tokens=row.totals.total_tokens,
            cost=row.totals.cost,
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
    return [
        SessionRow(**row)
        for row in agent_selectors.sessions_recent_for_user(user_id=user_id, limit=limit)
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
    rows = billing_selectors.payments_for_user(user_id=user_id)[:limit]
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
    rows = billing_selectors.usage_alerts(user_id=user_id)[:limit]
    return [
        AlertRow(
            triggered_at=row.triggered_at,
            alert_type=row.get_alert_type_display(),
            metric=row.get_metric_display(),
            threshold_percent=row.threshold_percent,
            value_at_trigger=row.value_at_trigger,
            limit_at_trigger=row.limit_at_trigger,
            state=billing_selectors.alert_state(row),
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
    rows = account_selectors.audit_trail(user_id=user_id)[:limit]
    return [
        AuditRow(
            created_at=row.created_at,
            event_type=row.event_type,
            severity=row.severity,
            actor="system"
            if row.actor_id is None
            else "self"
            if row.actor_id == user_id
            else row.actor.email,
            ip=row.ip or "",
        )
        for row in rows
    ]


def token_spend(*, user_id: int) -> list[TokenSpend]:
    """This UTC month's requests and cost per API token of the user, newest token first,
    then what no token sent (web pages, service credentials)."""
    return token_spend_this_month(user_id=user_id)
