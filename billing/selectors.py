"""Reads for billing pages, the API and charts: plain data."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.emails import normalize_email
from accounts.models import User
from billing.errors import refusals
from billing.models import (
    CURRENT_STATUSES,
    PaymentHistory,
    SubscriptionStatus,
    SubscriptionTier,
    UsageAlert,
    UserQuota,
    UserSubscription,
)
from witchcraft.platform.cached import Snapshot


@dataclass(frozen=True)
class QuotaRemaining:
    """The user's quota in its current period (``get_remaining_quota``)."""

    tokens_limit: int
    tokens_used: int
    tokens_remaining: int
    tokens_percent_used: Decimal | None  # None when the limit is 0
    cost_limit: Decimal
    cost_used: Decimal
    cost_remaining: Decimal
    cost_percent_used: Decimal | None
    period_start: datetime
    period_end: datetime


def quota_remaining(*, user_id: int) -> QuotaRemaining | None:
    """Return the user's limits, use and what is left this period; None without a quota.

    A period that has ended is reported as the current UTC month with nothing used (what the
    next quota call will roll it to). Raises ``billing.errors.QuotaError`` (forbidden) when
    the caller may not see the user's quota.
    """
    with refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT tokens_limit, tokens_used, tokens_remaining, tokens_percent_used,"
            " cost_limit, cost_used, cost_remaining, cost_percent_used, period_start,"
            " period_end FROM get_remaining_quota(p_user_id => %s::bigint)",
            [user_id],
        )
        row = cursor.fetchone()
    return None if row is None else QuotaRemaining(*row)


RPM_CACHE_KEY = "tier-rpm:{user_id}"


# Each process also keeps the rate it read for a few seconds (read on every API call: the
# shared cache would cost a round trip each time). A plan change reaches every process within
# RPM_LOCAL_SECONDS after the shared cache's entry is gone.
RPM_LOCAL_SECONDS = 10
RPM_LOCAL_MAX = 10_000
_rpm_local: dict[int, tuple[float, int]] = {}


def requests_per_minute_forget(*, user_id: int) -> None:
    """Drop the cached rate of the user's plan (the plan changed)."""
    _rpm_local.pop(user_id, None)
    cache.delete(RPM_CACHE_KEY.format(user_id=user_id))


def requests_per_minute_forget_all_local() -> None:
    """Forget every rate this process kept (tests, after emptying the shared cache)."""
    _rpm_local.clear()


def requests_per_minute(*, user_id: int) -> int:
    """The API requests per minute the user's current plan allows (free's when none).

    Cached for a minute in the shared cache, and for RPM_LOCAL_SECONDS in the process: it is
    read on every API call.
    """
    now = time.monotonic()
    kept = _rpm_local.get(user_id)
    if kept is not None and kept[0] > now:
        return kept[1]
    rpm = _requests_per_minute_shared(user_id=user_id)
    if len(_rpm_local) >= RPM_LOCAL_MAX:
        _rpm_local.clear()
    _rpm_local[user_id] = (now + RPM_LOCAL_SECONDS, rpm)
    return rpm


def _requests_per_minute_shared(*, user_id: int) -> int:
    key = RPM_CACHE_KEY.format(user_id=user_id)
    cached = cache.get(key)
    if cached is not None:
        return cached
    current = subscription_current(user_id=user_id)
    rpm = current.tier.requests_per_minute if current is not None else None
    if rpm is None:
        rpm = (
            SubscriptionTier.objects.filter(slug="free")
            .values_list("requests_per_minute", flat=True)
            .first()
            or 10
        )
    cache.set(key, rpm, timeout=60)
    return rpm


# --- The user's current subscription ---------------------------------------------------------


def subscriptions_current(*, user_id: int | OuterRef) -> QuerySet[UserSubscription]:
    """The user's current subscription (trialing, active or past due) as a queryset of at most
    one row: a partial unique index allows one current subscription per user.

    The one ORM reader of that fact. ``user_id`` may be an ``OuterRef("user_id")``, so that a
    list page reads every row's plan in its own query (``Subquery``, ``Exists``).
    """
    return UserSubscription.objects.filter(user_id=user_id, status__in=CURRENT_STATUSES)


def subscription_current(*, user_id: int) -> UserSubscription | None:
    """The user's current subscription with its tier and scheduled tier loaded (one query);
    None without one (the user is on the free plan)."""
    return subscriptions_current(user_id=user_id).select_related("tier", "scheduled_tier").first()


@dataclass(frozen=True)
class PublicTier:
    """A plan anyone may subscribe to, with its monthly limits and prices."""

    slug: str
    name: str
    description: str
    monthly_price: Decimal
    yearly_price: Decimal
    currency: str
    monthly_token_limit: int
    monthly_cost_limit: Decimal
    requests_per_minute: int
    features: dict


def _public_tiers() -> tuple[PublicTier, ...]:
    return tuple(
        PublicTier(
            slug=t.slug,
            name=t.name,
            description=t.description,
            monthly_price=t.monthly_price,
            yearly_price=t.yearly_price,
            currency=t.currency,
            monthly_token_limit=t.monthly_token_limit,
            monthly_cost_limit=t.monthly_cost_limit,
            requests_per_minute=t.requests_per_minute,
            features=t.features,
        )
        for t in SubscriptionTier.objects.filter(is_public=True, is_active=True).order_by(
            "sort_order", "monthly_price", "slug"
        )
    )


# Cached (witchcraft.platform.cached); a tier saved or deleted forgets it (billing.apps), and so
# does each plan's cached rate.
public_tiers_snapshot: Snapshot[tuple[PublicTier, ...]] = Snapshot("public-tiers", _public_tiers)


def public_tiers() -> list[PublicTier]:
    """Return the public, active plans in their display order."""
    return list(public_tiers_snapshot.get())


def tiers_all() -> QuerySet[SubscriptionTier]:
    """Every tier, public or not, active or not, by sort order then name: a queryset for a
    form's choice of tier."""
    return SubscriptionTier.objects.order_by("sort_order", "name")


# --- Staff dashboard: quotas near or over their limit, and the quota alerts ---------------

APPROACHING_RATIO = Decimal("0.8")
ALERT_STATUSES = ("open", "acknowledged", "resolved")
# An alert is resolved once its quota was reset, else acknowledged once staff saw it, else
# open. Unresolved (open or acknowledged): what the user still sees on their pages.
UNRESOLVED = "unresolved"
_ALERT_FILTERS = {
    "open": Q(resolved_at__isnull=True, acknowledged_at__isnull=True),
    "acknowledged": Q(resolved_at__isnull=True, acknowledged_at__isnull=False),
    "resolved": Q(resolved_at__isnull=False),
    UNRESOLVED: Q(resolved_at__isnull=True),
}


def _current_tier_name():
    """A subquery: the name of the user's current plan (None without one)."""
    return Subquery(
        subscriptions_current(user_id=OuterRef("user_id")).order_by().values("tier__name")[:1]
    )


def quotas_approaching_limit():
    """Quotas at or over 80 % of a limit, fullest first (served by idx_quotas_approaching_limit).

    A queryset (for a paginator) of UserQuota with ``user`` loaded and ``tier_name`` annotated.
    """
    return (
        UserQuota.objects.filter(usage_ratio__gte=APPROACHING_RATIO)
        .select_related("user")
        .annotate(tier_name=_current_tier_name())
        .order_by("-usage_ratio", "user_id")
    )


def quota_counts() -> dict[str, int]:
    """How many quotas are at or over 80 % and at or over 100 % (both on the partial index)."""
    return UserQuota.objects.filter(usage_ratio__gte=APPROACHING_RATIO).aggregate(
        approaching=Count("pk"), over=Count("pk", filter=Q(usage_ratio__gte=Decimal(1)))
    )


def quota_of(*, email: str):
    """The quota of the user with this email (``user`` loaded, ``tier_name`` annotated), or
    None when there is no such user or they have no quota."""
    return (
        UserQuota.objects.filter(user__email=normalize_email(email))
        .select_related("user")
        .annotate(tier_name=_current_tier_name())
        .first()
    )


def usage_alerts(*, status: str = "", user_id: int | None = None):
    """Quota alerts, newest first: a queryset for a paginator, the one ORM reader of alerts.

    Every user's alerts with ``user`` and ``acknowledged_by`` loaded (the staff lists show
    both), or only ``user_id``'s (``usage_alerts_user``; who they are is known). ``status``
    keeps one state: ``open``, ``acknowledged``, ``resolved`` (ALERT_STATUSES) or
    ``unresolved``; anything else keeps every alert.
    """
    alerts = UsageAlert.objects.order_by("-triggered_at", "-id")
    if user_id is None:
        alerts = alerts.select_related("user", "acknowledged_by")
    else:
        alerts = alerts.filter(user_id=user_id)
    if status in _ALERT_FILTERS:
        alerts = alerts.filter(_ALERT_FILTERS[status])
    return alerts


def alerts_open(*, user_id: int | None = None, limit: int = 10) -> list[UsageAlert]:
    """The newest unresolved quota alerts, at most ``limit`` (``usage_alerts_open``): every
    user's with their users loaded, or only ``user_id``'s."""
    return list(usage_alerts(status=UNRESOLVED, user_id=user_id)[:limit])


def alerts_raised_since(*, since: datetime, limit: int = 200) -> list[UsageAlert]:
    """The unresolved quota alerts raised at or after ``since``, oldest first, at most
    ``limit`` (``usage_alerts_open``): for the staff notifications."""
    return list(
        usage_alerts(status=UNRESOLVED)
        .filter(triggered_at__gte=since)
        .order_by("triggered_at", "id")[:limit]
    )


def alert_state(alert: UsageAlert) -> str:
    """``resolved``, ``acknowledged`` or ``open``: the alert's state as ``usage_alerts``
    filters it."""
    if alert.resolved_at:
        return "resolved"
    return "acknowledged" if alert.acknowledged_at else "open"


# --- The user's own pages -------------------------------------------------------------------

# What a public tier is to the viewer (PlanTier.action).
CURRENT = "current"
UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
# A past_due subscription keeps its plan this long after its period's end (monthly_maintenance).
PAST_DUE_GRACE = timedelta(days=7)


@dataclass(frozen=True)
class CurrentPlan:
    """The user's current subscription and its tier."""

    subscription_id: int
    tier_slug: str
    tier_name: str
    monthly_price: Decimal
    currency: str
    monthly_token_limit: int
    monthly_cost_limit: Decimal
    requests_per_minute: int
    status: str
    status_label: str
    billing_cycle: str
    period_start: datetime
    period_end: datetime
    cancel_at_period_end: bool
    next_tier_name: str | None  # the tier after the period's end, when a change is scheduled
    grace_ends_at: datetime | None  # past_due: when the plan expires to free unless paid
    paid_through_provider: bool


@dataclass(frozen=True)
class PlanTier:
    """A public tier as the plan page offers it."""

    tier: PublicTier
    action: str  # CURRENT, UPGRADE or DOWNGRADE
    checkout_available: bool  # an upgrade that can be paid for online here

    @property
    def slug(self) -> str:
        return self.tier.slug


@dataclass(frozen=True)
class PlanOverview:
    current: CurrentPlan | None
    tiers: list[PlanTier]
    payments_configured: bool


def plan_overview(*, user_id: int) -> PlanOverview:
    """Return the user's current plan and every public tier with what moving there means:
    dearer tiers are upgrades (paid through checkout, at once), the others downgrades (at the
    period's end). Two queries."""
    from billing import checkout

    subscription = subscription_current(user_id=user_id)
    current = None
    if subscription is not None:
        tier = subscription.tier
        next_tier = None
        if subscription.cancel_at_period_end:
            next_tier = subscription.scheduled_tier.name if subscription.scheduled_tier else "Free"
        current = CurrentPlan(
            subscription_id=subscription.pk,
            tier_slug=tier.slug,
            tier_name=tier.name,
            monthly_price=tier.monthly_price,
            currency=tier.currency,
            monthly_token_limit=tier.monthly_token_limit,
            monthly_cost_limit=tier.monthly_cost_limit,
            requests_per_minute=tier.requests_per_minute,
            status=subscription.status,
            status_label=SubscriptionStatus(subscription.status).label,
            billing_cycle=subscription.billing_cycle,
            period_start=subscription.current_period_start,
            period_end=subscription.current_period_end,
            cancel_at_period_end=subscription.cancel_at_period_end,
            next_tier_name=next_tier,
            grace_ends_at=subscription.current_period_end + PAST_DUE_GRACE
            if subscription.status == SubscriptionStatus.PAST_DUE
            else None,
            paid_through_provider=bool(subscription.provider_subscription_id),
        )
    price = current.monthly_price if current else Decimal(0)
    tiers = []
    for tier in public_tiers():
        if current is not None and tier.slug == current.tier_slug:
            action = CURRENT
        elif tier.monthly_price > price:
            action = UPGRADE
        else:
            action = DOWNGRADE
        tiers.append(
            PlanTier(
                tier=tier,
                action=action,
                checkout_available=action == UPGRADE
                and checkout.checkout_link(tier_slug=tier.slug) is not None,
            )
        )
    return PlanOverview(
        current=current, tiers=tiers, payments_configured=checkout.payments_configured()
    )


def payments_for_user(*, user_id: int):
    """The user's payments, newest first: a queryset of PaymentHistory for a paginator."""
    return PaymentHistory.objects.filter(user_id=user_id).order_by("-created_at", "-id")


def user_with_quota(*, user_id: int) -> User | None:
    """The user with their profile and quota loaded (one query, for the staff's user page);
    None for an unknown id. Here rather than in accounts: the quota is billing's, and billing
    may join the accounts' rows below it."""
    return User.objects.select_related("profile", "quota").filter(pk=user_id).first()


# --- Staff dashboard: the user directory -----------------------------------------------------

FREE_PLAN = "Free"


def directory_plan_and_quota() -> dict:
    """Annotations for a queryset of users (``OuterRef("pk")``), for the staff user directory:
    ``plan`` (the current plan's tier name, FREE_PLAN without one: the unique index of the
    current subscription) and ``quota_ratio`` (the larger fraction used of the quota's tokens
    and cost, ``usage_ratio``; None without a quota or limits; by the quota's primary key)."""
    return {
        "plan": Coalesce(
            Subquery(
                subscriptions_current(user_id=OuterRef("pk")).order_by().values("tier__name")[:1]
            ),
            Value(FREE_PLAN),
        ),
        "quota_ratio": Subquery(
            UserQuota.objects.filter(user_id=OuterRef("pk")).values("usage_ratio")[:1]
        ),
    }
