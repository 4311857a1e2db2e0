"""Writes for billing. Each calls the SQL function of its flow (DESIGN.md "Quotas").

The services run inside whatever row-level security context the caller set (a request's user,
or ``rls.service_context()``); the SQL functions check that the caller may act for the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts import audit
from billing import alerts, checkout, selectors
from billing.errors import (
    INVALID,
    NO_CHECKOUT,
    NOT_AN_UPGRADE,
    UPGRADES_UNAVAILABLE,
    PlanError,
    plan_refusals,
    refusals,
    staff_refusals,
)
from billing.models import UsageAlert
from witchcraft.platform import rls

# Why a reservation was refused (QuotaDecision.reason).
REASON_NO_QUOTA = "no_quota"
REASON_TOKENS_EXCEEDED = "tokens_exceeded"
REASON_COST_EXCEEDED = "cost_exceeded"


@dataclass(frozen=True)
class QuotaDecision:
    """The answer of ``check_and_consume_quota``."""

    allowed: bool
    tokens_remaining: int
    cost_remaining: Decimal
    reason: str | None  # None when allowed, else one of the REASON_* constants
    reservation_id: int | None = None  # the reservation held when allowed
    expires_at: datetime | None = None  # when its hold is given back unless settled before


def quota_consume(
    *, user_id: int, tokens: int, cost: Decimal, ttl_seconds: int | None = None
) -> QuotaDecision:
    """Reserve an estimate of ``tokens`` and ``cost`` against the user's quota.

    Returns a QuotaDecision: when allowed the estimate is held by a reservation
    (``reservation_id``; pass it to ``usage.services.usage_record`` or the batch, which settles
    it) until ``expires_at`` (``ttl_seconds``, default settings.QUOTA_RESERVATION_TTL_SECONDS),
    when an unsettled hold is given back; when refused nothing changed. Commit before calling
    the AI provider: an open transaction would hold the quota row locked for the whole call.
    Raises QuotaError for a negative estimate or lifetime (invalid) or a caller who may not
    record for the user (forbidden).
    """
    ttl = settings.QUOTA_RESERVATION_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    with refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT allowed, tokens_remaining, cost_remaining, reason, reservation_id,"
            " expires_at, current_setting('app.alerts_raised', true) = 'true'"
            " FROM check_and_consume_quota(p_user_id => %s::bigint, p_tokens => %s::bigint,"
            " p_cost => %s::numeric, p_ttl_seconds => %s::integer)",
            [user_id, tokens, cost, ttl],
        )
        *decision, alerts_raised = cursor.fetchone()
    if alerts_raised:
        alerts.notify_after_commit(user_id=user_id)
    return QuotaDecision(*decision)


def quota_reservations_release_expired() -> dict[str, int]:
    """Give back the holds of every expired unsettled reservation and prune settled or released
    ones older than a week; return ``{"released": n, "pruned": n}``. The job worker runs it
    every minute (witchcraft.tasks); each user's next quota call releases theirs lazily too.
    Runs in the service context."""
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT release_expired_quota_reservations()")
        return json.loads(cursor.fetchone()[0])


def quota_roll_forward(*, user_id: int) -> bool:
    """Move the user's quota to the current UTC month if its period has ended.

    Returns True when it rolled (used counters reset, limits from the current plan, the old
    period's alerts resolved), False otherwise. Raises QuotaError (forbidden).
    """
    with refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT roll_quota_forward(p_user_id => %s::bigint)", [user_id])
        return cursor.fetchone()[0]


# Staff actions (the admin). Audit events they write:
QUOTA_RESET = "quota_reset"
TIER_CHANGED = "tier_changed"


def quota_reset(*, user_id: int, user_agent: str = "") -> bool:
    """Reset the user's quota (staff only): used counters to 0, limits from the current plan,
    open alerts resolved. Returns False when the user has no quota. Audited (``quota_reset``,
    the staff member as actor). Raises QuotaError (forbidden) for a caller who is not staff.
    """
    with staff_refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT reset_user_quota(p_user_id => %s::bigint)", [user_id])
        reset = cursor.fetchone()[0]
        if reset:
            audit.audit_event(
                QUOTA_RESET,
                user_id=user_id,
                target_type="user_quota",
                target_id=user_id,
                user_agent=user_agent,
            )
    return reset


def subscription_change_tier(*, user_id: int, tier_slug: str, user_agent: str = "") -> int:
    """Move the user to the tier ``tier_slug`` (staff only); return the current subscription id.

    The current subscription is canceled and a new active one starts on the tier; the quota's
    limits become the tier's. Already on the tier: nothing changes and nothing is audited.
    Audited (``tier_changed``). Raises QuotaError: invalid (unknown tier), forbidden (not staff).
    """
    with staff_refusals(), transaction.atomic(), connection.cursor() as cursor:
        before = selectors.subscription_current(user_id=user_id)
        cursor.execute(
            "SELECT change_user_tier(p_user_id => %s::bigint, p_tier_slug => %s)",
            [user_id, tier_slug],
        )
        subscription_id = cursor.fetchone()[0]
        if before is None or before.pk != subscription_id:
            audit.audit_event(
                TIER_CHANGED,
                user_id=user_id,
                target_type="user_subscription",
                target_id=subscription_id,
                details={"from": before.tier.slug if before else None, "to": tier_slug},
                user_agent=user_agent,
            )
    return subscription_id


# A temporary limit raise (staff): the audit row (quota_limit_raised) is written by the SQL
# function itself, with the staff member as actor.
QUOTA_LIMIT_RAISED = "quota_limit_raised"
# The largest limits a raise accepts (raise_quota_limit checks them too): numeric(12,6) money,
# and a token count far beyond any plan.
RAISE_MAX_TOKENS = 10**15
RAISE_MAX_COST = Decimal("999999.999999")


def quota_raise_limit(
    *, user_id: int, tokens_limit: int | None, cost_limit: Decimal | None, until: datetime
) -> int:
    """Raise the user's token and / or cost limit (None: that one unchanged) until ``until``
    (staff holding billing.change_userquota). Until then check_and_consume_quota and
    get_remaining_quota use the larger of the plan's limit and this one; afterwards the plan's,
    with no job to run. Replaces a raise still running. Returns the id of the
    quota_limit_raises row; audited (``quota_limit_raised``) by the database.
    Raises QuotaError: invalid (no limit, a limit not above the plan's or out of range, an end
    in the past or after the next quota period), forbidden (not allowed), not_found (no quota).
    """
    with staff_refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT raise_quota_limit(p_user_id => %s::bigint, p_tokens_limit => %s::bigint,"
            " p_cost_limit => %s::numeric, p_until => %s::timestamptz)",
            [user_id, tokens_limit, cost_limit, until],
        )
        return cursor.fetchone()[0]


# The user's own plan changes (/me/plan/). Audit events written here (the SQL functions write
# subscription_change_scheduled / subscription_change_undone themselves):
CHECKOUT_STARTED = "checkout_started"


def plan_schedule_change(*, user_id: int, tier_slug: str) -> int:
    """Move the user to the cheaper tier ``tier_slug`` (``free``: cancel) when the current
    period ends; the quota keeps today's limits until then. Returns the subscription id.
    Audited. Raises PlanError (invalid: unknown tier, the current one, a dearer one).
    """
    with plan_refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT schedule_subscription_change(p_user_id => %s::bigint, p_tier_slug => %s)",
            [user_id, tier_slug],
        )
        return cursor.fetchone()[0]


def plan_resume(*, user_id: int) -> bool:
    """Undo the user's scheduled downgrade or cancellation; False when none was scheduled."""
    with plan_refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT resume_subscription(p_user_id => %s::bigint)", [user_id])
        return cursor.fetchone()[0]


def plan_checkout_start(*, user_id: int, email: str, tier_slug: str, user_agent: str = "") -> str:
    """Return the provider's checkout URL where the user pays for the upgrade to
    ``tier_slug``. Audited (``checkout_started``). Raises PlanError (invalid): payments not set
    up, no checkout for the tier, or the tier is not public, active and dearer than the
    user's current one.
    """
    if not checkout.payments_configured():
        raise PlanError(INVALID, UPGRADES_UNAVAILABLE)
    plan = selectors.plan_overview(user_id=user_id)
    target = next((t for t in plan.tiers if t.slug == tier_slug), None)
    if target is None or target.action != selectors.UPGRADE:
        raise PlanError(INVALID, NOT_AN_UPGRADE)
    link = checkout.checkout_link(tier_slug=tier_slug)
    if link is None:
        raise PlanError(INVALID, NO_CHECKOUT)
    audit.audit_event(
        CHECKOUT_STARTED,
        user_id=user_id,
        details={"tier": tier_slug},
        user_agent=user_agent,
    )
    return checkout.checkout_url(link=link, user_id=user_id, email=email)


@dataclass(frozen=True)
class PlanChange:
    """What :func:`plan_change` did: an upgrade answers the provider's ``checkout_url``, where
    the user pays (the plan changes when the provider confirms); a downgrade or cancellation is
    scheduled for the period's end on ``subscription_id``."""

    checkout_url: str | None = None
    subscription_id: int | None = None


def plan_change(*, user_id: int, email: str, tier_slug: str, user_agent: str = "") -> PlanChange:
    """The user's own plan change (``/me/plan/``), the one flow: to a dearer public tier it
    starts the provider's checkout (:func:`plan_checkout_start`, audited), to any other it
    schedules the change (:func:`plan_schedule_change`). Raises PlanError as they do."""
    plan = selectors.plan_overview(user_id=user_id)
    target = next((t for t in plan.tiers if t.slug == tier_slug), None)
    if target is not None and target.action == selectors.UPGRADE:
        url = plan_checkout_start(
            user_id=user_id, email=email, tier_slug=tier_slug, user_agent=user_agent
        )
        return PlanChange(checkout_url=url)
    return PlanChange(subscription_id=plan_schedule_change(user_id=user_id, tier_slug=tier_slug))


# Staff acknowledge a quota alert on the dashboard (audit event):
ALERT_ACKNOWLEDGED = "alert_acknowledged"


def alert_acknowledge(*, alert_id: int, staff_id: int) -> bool | None:
    """Mark the quota alert as seen by the staff member ``staff_id``, once, and audit it.

    Returns True when this call acknowledged it, False when it already was, None when there is
    no such alert (for the caller, as for row-level security, a missing row).
    """
    alert = UsageAlert.objects.filter(pk=alert_id).first()
    if alert is None:
        return None
    with transaction.atomic():
        marked = UsageAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), acknowledged_by_id=staff_id
        )
        if marked:
            audit.audit_event(
                ALERT_ACKNOWLEDGED,
                user_id=alert.user_id,
                target_type="usage_alert",
                target_id=alert.pk,
                details={"alert_type": alert.alert_type, "metric": alert.metric},
            )
    return bool(marked)
