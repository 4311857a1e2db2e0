"""Staff hear about trouble: monitoring alerts firing and resolved, and new quota alerts, by
mail (STAFF_NOTIFY_EMAILS) and a Slack-compatible webhook (STAFF_NOTIFY_WEBHOOK_URL).

- :mod:`.checks`: every minute (``check_staff_notifications``, witchcraft/tasks.py) the state
  of each monitoring alert, as /dashboard/monitoring/ evaluates it, and the quota alerts raised
  since, compared with what was last told (``notification_states``); each change is recorded
  once (``staff_notifications``) with one delivery job per configured channel;
- :mod:`.delivery`: that job (``deliver_staff_notification``, retried with backoff on its own
  channel only), the test of ``manage.py notify_test``, the monitoring page's overview;
- :mod:`.channels`: mail through the project's sender, the webhook's POST, and the masking of
  the webhook's address (a secret: never stored, logged or shown beyond its host).
"""

from witchcraft.operations.notifications.channels import (
    CHANNELS,
    MAIL,
    WEBHOOK,
    DeliveryFailed,
    DeliveryRefused,
    configured_channels,
    mask,
    webhook_host,
)
from witchcraft.operations.notifications.checks import DELIVER_TASK, notifications_check
from witchcraft.operations.notifications.delivery import (
    notification_deliver,
    notification_test,
    notifications_overview,
)

__all__ = [
    "CHANNELS",
    "DELIVER_TASK",
    "MAIL",
    "WEBHOOK",
    "DeliveryFailed",
    "DeliveryRefused",
    "configured_channels",
    "mask",
    "notification_deliver",
    "notification_test",
    "notifications_check",
    "notifications_overview",
    "webhook_host",
]
