"""When a quota reaches 100 % at the pace of its period so far, and which of its limits fired:
the staff quota list's columns (billing/dashboard.py). Pure arithmetic over a quota row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from billing.models import ALERT_THRESHOLDS, AlertMetric, AlertType

REACHED = "reached"  # at or over the limit already
NOT_THIS_PERIOD = "not this period"  # at this pace (or with no use yet) not before the period ends
PROJECTED = "projected"  # reaches the limit at ``reaches_at``
NO_LIMIT = "no limit"  # a limit of 0: never alerts, never projected


@dataclass(frozen=True)
class Projection:
    state: str  # REACHED, NOT_THIS_PERIOD, PROJECTED or NO_LIMIT
    reaches_at: datetime | None = None  # with PROJECTED


def project_full(
    *,
    used: Decimal | int,
    limit: Decimal | int,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
) -> Projection:
    """When ``used`` reaches ``limit`` at the pace so far (used / time elapsed in the period):
    REACHED at or over it, NOT_THIS_PERIOD when nothing is used yet, no time has elapsed, or
    the date falls at or after ``period_end``; else PROJECTED with the moment."""
    used, limit = Decimal(used), Decimal(limit)
    if limit <= 0:
        return Projection(NO_LIMIT)
    if used >= limit:
        return Projection(REACHED)
    elapsed = Decimal(str((now - period_start).total_seconds()))
    left = Decimal(str((period_end - now).total_seconds()))
    if used <= 0 or elapsed <= 0 or left <= 0:
        return Projection(NOT_THIS_PERIOD)
    seconds = (limit - used) * elapsed / used
    if seconds >= left:
        return Projection(NOT_THIS_PERIOD)
    return Projection(PROJECTED, now + timedelta(seconds=float(seconds)))


@dataclass(frozen=True)
class Fired:
    """A limit the quota has reached a threshold of (80 or 100 %), with its projection."""

    metric: str  # AlertMetric: tokens or cost
    threshold: int  # 80 or 100
    percent: int  # used / limit, whole percent
    projection: Projection


def limits_in_force(quota, *, now: datetime) -> tuple[int, Decimal]:
    """The token and cost limits check_and_consume_quota applies now: a staff raise until
    ``raised_until`` (the larger of it and the plan's), the plan's otherwise."""
    if quota.raised_until is not None and quota.raised_until > now:
        return (
            max(quota.tokens_limit, quota.raised_tokens_limit or 0),
            max(quota.cost_limit, quota.raised_cost_limit or Decimal(0)),
        )
    return quota.tokens_limit, quota.cost_limit


def fired_limits(quota, *, now: datetime) -> list[Fired]:
    """The metrics at or over 80 % of their plan limit (what the alerts fire on), fullest first,
    each with the threshold reached and when it reaches 100 % of the limit in force."""
    tokens_limit, cost_limit = limits_in_force(quota, now=now)
    metrics = (
        (AlertMetric.TOKENS, quota.tokens_used, quota.tokens_limit, tokens_limit),
        (AlertMetric.COST, quota.cost_used, quota.cost_limit, cost_limit),
    )
    fired = []
    for metric, used, plan_limit, limit in metrics:
        if plan_limit <= 0:
            continue
        ratio = Decimal(used) / Decimal(plan_limit)
        if ratio * 100 < ALERT_THRESHOLDS[AlertType.WARNING]:
            continue
        threshold = ALERT_THRESHOLDS[
            AlertType.EXCEEDED
            if ratio * 100 >= ALERT_THRESHOLDS[AlertType.EXCEEDED]
            else AlertType.WARNING
        ]
        fired.append(
            Fired(
                metric=str(metric),
                threshold=threshold,
                percent=int(ratio * 100),
                projection=project_full(
                    used=used,
                    limit=limit,
                    period_start=quota.period_start,
                    period_end=quota.period_end,
                    now=now,
                ),
            )
        )
    return sorted(fired, key=lambda f: -f.percent)
