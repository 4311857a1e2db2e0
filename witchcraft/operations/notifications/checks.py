"""The check the worker runs every minute (``check_staff_notifications``, witchcraft/tasks.py):
what changed since the last notification, recorded, and one delivery job per channel queued.

- Monitoring alerts: the states /dashboard/monitoring/ shows, from its own evaluation
  (``witchcraft.operations.monitoring.alerts``: the thresholds live there only). A check is
  ``firing`` or ``ok`` here (the page's half-way ``warning`` is not firing). ok → firing
  notifies "firing", firing → ok notifies "resolved", an unchanged state nothing.
- Quota alerts (billing's ``usage_alerts``, raised at 80 % and 100 % of a limit): each new one
  is told once; those a run finds are told together, in one notification.

The states (``notification_states``), the notifications (``staff_notifications``) and their
delivery jobs are written in one transaction: a run that fails records and queues nothing, and
the next run finds the same changes. The delivery jobs carry the notification's id and the
channel only (witchcraft.operations.notifications.delivery).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.urls import reverse
from django.utils.text import slugify

from billing import selectors as billing_selectors
from billing.models import AlertMetric, AlertType, UsageAlert
from witchcraft.models import NotificationState, StaffNotification
from witchcraft.operations import monitoring
from witchcraft.operations.monitoring.statements import slow_queries
from witchcraft.operations.monitoring.windows import request_windows
from witchcraft.operations.notifications import channels
from witchcraft.operations.pitr.status import backup_status
from witchcraft.platform import rls
from witchcraft.platform.mail import site_url
from witchcraft.platform.money import money_text

DELIVER_TASK = "deliver_staff_notification"
MONITORING_PREFIX = "monitoring:"
USAGE_ALERT_PREFIX = "usage_alert:"
# Quota alerts raised this long ago at most are told (a worker down longer tells none of the
# older ones); their rows here are kept twice as long, then pruned.
USAGE_ALERT_LOOKBACK = timedelta(hours=24)
USAGE_ALERTS_PER_RUN = 200
USAGE_ALERT_LINES = 20
NOTIFICATIONS_KEPT = timedelta(days=90)
OK, FIRING = NotificationState.State.OK, NotificationState.State.FIRING


@dataclass(frozen=True)
class CheckState:
    key: str  # monitoring:<slug of the alert's name>
    name: str
    severity: str
    threshold: str
    measured: str
    state: str  # ok or firing


def monitoring_states(*, now: datetime) -> list[CheckState]:
    """Every monitoring alert as /dashboard/monitoring/ evaluates it now."""
    quotas = monitoring.quota_usage()
    logins = monitoring.failed_login_peak(now=now)
    windows = request_windows(now=now)
    sizes = monitoring.database_sizes()
    slow = slow_queries()
    backup = backup_status()
    return [
        CheckState(
            key=f"{MONITORING_PREFIX}{slugify(alert.name)}",
            name=alert.name,
            severity=alert.severity,
            threshold=alert.threshold,
            measured=alert.measured,
            state=FIRING if alert.state == monitoring.FIRING else OK,
        )
        for alert in monitoring.alerts(
            quotas=quotas, logins=logins, windows=windows, sizes=sizes, slow=slow, backup=backup
        )
    ]


def _notification(*, key: str, state: str, title: str, body: str, now: datetime, on: list[str]):
    return StaffNotification.objects.create(
        check_key=key, state=state, title=title[:200], body=body[:4000], channels=on, created_at=now
    )


def _alert_line(alert: UsageAlert) -> str:
    if alert.metric == AlertMetric.TOKENS:
        figures = f"{int(alert.value_at_trigger):,} of {int(alert.limit_at_trigger):,} tokens"
    else:
        figures = f"{money_text(alert.value_at_trigger)} of {money_text(alert.limit_at_trigger)}"
    kind = "exceeded" if alert.alert_type == AlertType.EXCEEDED else "warning"
    link = site_url(reverse("dashboard:user", args=[alert.user_id]))
    return (
        f"User #{alert.user_id}: {alert.threshold_percent} % of the monthly {alert.metric}"
        f" ({kind}; {figures}) {link}"
    )


def _monitoring_changes(*, now: datetime, on: list[str]) -> list[StaffNotification]:
    known = {
        row.check_key: row
        for row in NotificationState.objects.select_for_update().filter(
            check_key__startswith=MONITORING_PREFIX
        )
    }
    created = []
    for check in monitoring_states(now=now):
        previous = known.get(check.key)
        if (previous.state if previous else OK) == check.state:
            continue  # unchanged (a check never seen is ok until it fires)
        NotificationState.objects.update_or_create(
            check_key=check.key,
            defaults={"state": check.state, "measured": check.measured[:500], "changed_at": now},
        )
        if check.state == FIRING:
            state = StaffNotification.State.FIRING
            title = f"{check.name}: firing ({check.severity})"
            body = f"{check.name}: {check.measured}.\nThreshold: {check.threshold}."
        else:
            state = StaffNotification.State.RESOLVED
            title = f"{check.name}: resolved"
            body = (
                f"{check.name} is back to normal: {check.measured}.\nThreshold: {check.threshold}."
            )
        created.append(
            _notification(key=check.key, state=state, title=title, body=body, now=now, on=on)
        )
    return created


def _usage_alert_changes(*, now: datetime, on: list[str]) -> list[StaffNotification]:
    raised = billing_selectors.alerts_raised_since(
        since=now - USAGE_ALERT_LOOKBACK, limit=USAGE_ALERTS_PER_RUN
    )
    keys = {f"{USAGE_ALERT_PREFIX}{alert.id}": alert for alert in raised}
    told = set(
        NotificationState.objects.filter(check_key__in=list(keys)).values_list(
            "check_key", flat=True
        )
    )
    fresh = [alert for key, alert in keys.items() if key not in told]
    if not fresh:
        return []
    NotificationState.objects.bulk_create(
        [
            NotificationState(
                check_key=f"{USAGE_ALERT_PREFIX}{alert.id}",
                state=NotificationState.State.NOTIFIED,
                measured=f"user {alert.user_id} {alert.threshold_percent} % {alert.metric}",
                changed_at=now,
            )
            for alert in fresh
        ]
    )
    exceeded = sum(1 for alert in fresh if alert.alert_type == AlertType.EXCEEDED)
    title = f"Quota alerts: {len(fresh)} new" + (
        f", {exceeded} at or over the limit" if exceeded else ""
    )
    lines = [_alert_line(alert) for alert in fresh[:USAGE_ALERT_LINES]]
    if len(fresh) > USAGE_ALERT_LINES:
        lines.append(f"… and {len(fresh) - USAGE_ALERT_LINES} more: /dashboard/quotas/")
    notification = _notification(
        key=f"{USAGE_ALERT_PREFIX}new",
        state=StaffNotification.State.RAISED,
        title=title,
        body="\n".join(lines),
        now=now,
        on=on,
    )
    return [notification]


def _prune(*, now: datetime) -> None:
    NotificationState.objects.filter(
        check_key__startswith=USAGE_ALERT_PREFIX, changed_at__lt=now - 2 * USAGE_ALERT_LOOKBACK
    ).delete()
    StaffNotification.objects.filter(created_at__lt=now - NOTIFICATIONS_KEPT).delete()


def queue_deliveries(notifications: list[StaffNotification]) -> int:
    """Queue one delivery job per notification and channel, in the caller's transaction (as the
    owner role: the runtime role has no grant on the queue). Returns how many."""
    from procrastinate.contrib.django import app  # ready once Django's apps are

    task = app.configure_task(DELIVER_TASK, allow_unknown=False)
    queued = 0
    for notification in notifications:
        for channel in notification.channels:
            task.defer(notification_id=notification.id, channel=channel)
            queued += 1
    return queued


def notifications_check(*, now: datetime | None = None) -> dict[str, int]:
    """Record what changed since the last run and queue its deliveries. Returns
    ``{"notifications": n, "deliveries": m}``.

    With no channel configured the changes are still recorded (the monitoring page lists them,
    "no channel"), and nothing is queued.
    """
    on = channels.configured_channels()
    with transaction.atomic():
        with rls.service_context():
            now = now or monitoring.clock()
            created = _monitoring_changes(now=now, on=on)
            created += _usage_alert_changes(now=now, on=on)
            _prune(now=now)
        deliveries = queue_deliveries(created)
    return {"notifications": len(created), "deliveries": deliveries}
