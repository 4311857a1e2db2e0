"""``/me/``: the user's month at a glance (plan, quota meters, today's and the month's usage,
open alerts, recent agent sessions). It spans billing, usage and agents, so it is composed
here on the roof from each domain's selectors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from agents import selectors as agent_selectors
from billing import selectors as billing_selectors
from billing.selectors import QuotaRemaining
from usage.me_selectors import UsageSum, usage_today_and_month

RECENT_SESSIONS = 5


@dataclass(frozen=True)
class QuotaMeter:
    """One limit of the user's quota, as a progress bar shows it."""

    used: int | Decimal
    limit: int | Decimal
    remaining: int | Decimal
    percent: Decimal | None  # None when the limit is 0
    bar: Decimal  # ``percent`` capped to 0..100 (100 for a zero limit) for ``<progress>``

    @classmethod
    def of(cls, *, used, limit, remaining, percent: Decimal | None) -> QuotaMeter:
        bar = Decimal(100) if percent is None else max(Decimal(0), min(percent, Decimal(100)))
        return cls(used=used, limit=limit, remaining=remaining, percent=percent, bar=bar)


@dataclass(frozen=True)
class Overview:
    """What ``/me/`` shows: this month at a glance."""

    plan_name: str  # the current subscription's plan, or FREE_PLAN_NAME
    quota: QuotaRemaining | None  # None when the user has no quota
    tokens_meter: QuotaMeter | None
    cost_meter: QuotaMeter | None
    today: UsageSum  # the UTC day, from ai_usage_daily
    this_month: UsageSum  # the UTC month, from ai_usage_monthly
    # The domains' rows as their selectors return them (the roof names no domain's models):
    alerts: list  # billing.selectors.alerts_open: unresolved quota alerts, newest first
    sessions: list  # agents.selectors.sessions_page: the latest sessions, newest activity first


FREE_PLAN_NAME = "Free"


def current_plan_name(*, user_id: int) -> str:
    """The name of the user's current plan (a subscription in a current status), or "Free"."""
    current = billing_selectors.subscription_current(user_id=user_id)
    name = current.tier.name if current is not None else ""
    return name or FREE_PLAN_NAME


def me_overview(*, user_id: int, today: date) -> Overview:
    """The overview of the user's month: plan, quota meters, today's and the month's usage,
    open alerts and recent sessions. A fixed number of queries, whatever the user holds."""
    quota = billing_selectors.quota_remaining(user_id=user_id)
    today_sum, month_sum = usage_today_and_month(user_id=user_id, today=today)
    return Overview(
        plan_name=current_plan_name(user_id=user_id),
        quota=quota,
        tokens_meter=None
        if quota is None
        else QuotaMeter.of(
            used=quota.tokens_used,
            limit=quota.tokens_limit,
            remaining=quota.tokens_remaining,
            percent=quota.tokens_percent_used,
        ),
        cost_meter=None
        if quota is None
        else QuotaMeter.of(
            used=quota.cost_used,
            limit=quota.cost_limit,
            remaining=quota.cost_remaining,
            percent=quota.cost_percent_used,
        ),
        today=today_sum,
        this_month=month_sum,
        alerts=billing_selectors.alerts_open(user_id=user_id),
        sessions=agent_selectors.sessions_page(user_id=user_id, limit=RECENT_SESSIONS).items,
    )
