"""Delivering a notification on one channel (the ``deliver_staff_notification`` job, one per
notification and channel), the test message of ``manage.py notify_test``, and what the
monitoring page shows of it all.

A channel's job is retried alone (a webhook answering 500 retries the webhook, never the mail):
each channel has its own ``<channel>_sent_at``, set once delivered, and a job that finds it set
sends nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models.functions import Now
from django.urls import reverse

from witchcraft.models import StaffNotification
from witchcraft.operations.notifications import channels
from witchcraft.platform import rls
from witchcraft.platform.mail import site_url

logger = logging.getLogger(__name__)

RECENT = 10
DELIVERED, ALREADY_DELIVERED, GONE = "delivered", "already delivered", "gone"
TEST_KEY = "test:notify_test"


def _sent_field(channel: str) -> str:
    if channel not in channels.CHANNELS:
        raise channels.DeliveryRefused(f"unknown channel {channel!r}")
    return f"{channel}_sent_at"


def _send(notification: StaffNotification, channel: str) -> None:
    link = site_url(reverse("dashboard:monitoring"))
    if channel == channels.MAIL:
        channels.mail_send(
            title=notification.title,
            body=notification.body,
            link=link,
            severity=notification.state,
        )
    else:
        channels.webhook_send(title=notification.title, body=notification.body, link=link)


def _record(notification_id: int, **fields: Any) -> None:
    with transaction.atomic(), rls.service_context():
        StaffNotification.objects.filter(pk=notification_id).update(**fields)


def notification_deliver(*, notification_id: int, channel: str) -> str:
    """Send the notification on ``channel`` unless it went out there already; record when.

    Returns DELIVERED, ALREADY_DELIVERED or GONE (pruned). A failure is recorded on the row
    (``last_error``, without the webhook's address) and raised: DeliveryFailed is retried by
    the job, DeliveryRefused is not.
    """
    field = _sent_field(channel)
    with transaction.atomic(), rls.service_context():
        notification = StaffNotification.objects.filter(pk=notification_id).first()
    if notification is None:
        return GONE
    if getattr(notification, field) is not None:
        return ALREADY_DELIVERED
    try:
        _send(notification, channel)
    except (channels.DeliveryFailed, channels.DeliveryRefused) as exc:
        error = channels.mask(f"{channel}: {exc}")
        _record(notification_id, last_error=error)
        logger.warning("staff notification %s not delivered: %s", notification_id, error)
        raise
    # Only the first delivery is recorded (a job run twice at once would not send twice
    # anyway: procrastinate runs one attempt of a job at a time).
    with transaction.atomic(), rls.service_context():
        StaffNotification.objects.filter(pk=notification_id, **{f"{field}__isnull": True}).update(
            **{field: Now()}
        )
    return DELIVERED


def notification_test() -> dict[str, str]:
    """Send a test notification now on every configured channel (``manage.py notify_test``),
    recorded like the others. Returns ``{channel: "delivered" | error}``; empty when no channel
    is configured."""
    on = channels.configured_channels()
    if not on:
        return {}
    with transaction.atomic(), rls.service_context():
        notification = StaffNotification.objects.create(
            check_key=TEST_KEY,
            state=StaffNotification.State.TEST,
            title="Test notification",
            body="manage.py notify_test: staff notifications reach this channel.",
            channels=on,
            created_at=datetime.now(UTC),
        )
    results = {}
    for channel in on:
        try:
            results[channel] = notification_deliver(
                notification_id=notification.id, channel=channel
            )
        except (channels.DeliveryFailed, channels.DeliveryRefused) as exc:
            results[channel] = channels.mask(str(exc))
    return results


def notifications_overview(*, limit: int = RECENT) -> dict[str, Any]:
    """For /dashboard/monitoring/: the channels configured (the mail addresses, the webhook's
    host only) and the latest notifications (one query, staff_notifications_created)."""
    return {
        "channels": channels.configured_channels(),
        "emails": channels.mail_addresses(),
        "webhook_host": channels.webhook_host(),
        "recent": list(StaffNotification.objects.order_by("-created_at", "-id")[:limit]),
    }
