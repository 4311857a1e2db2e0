"""The billing jobs of the worker (procrastinate finds each app's ``tasks.py``): the quota alert
mails (a sweep every 10 minutes, and one queued after a commit) and the holds of expired quota
reservations given back every minute."""

from __future__ import annotations

from procrastinate.contrib.django import app

from billing import alerts
from billing import services as billing_services
from witchcraft.platform import deferred
from witchcraft.platform.queues import MAIL_QUEUE, MAIL_RETRY, UPKEEP_QUEUE

ALERT_SWEEP_CRON = "*/10 * * * *"
RESERVATIONS_CRON = "* * * * *"


@app.periodic(cron=ALERT_SWEEP_CRON, periodic_id="send_alert_mails")
@app.task(
    name="send_alert_mails",
    queue=MAIL_QUEUE,
    lock="send_alert_mails",
    queueing_lock="send_alert_mails",
)
def send_alert_mails(timestamp: int) -> int:
    """Mail the alerts whose mail has not gone out yet; return how many were mailed (a mail
    that fails fails the job, and the next sweep tries again)."""
    return alerts.alerts_notify()


@app.periodic(cron=RESERVATIONS_CRON, periodic_id="release_quota_reservations")
@app.task(
    name="release_quota_reservations",
    queue=UPKEEP_QUEUE,
    lock="release_quota_reservations",
    queueing_lock="release_quota_reservations",
)
def release_quota_reservations(timestamp: int) -> dict[str, int]:
    """Give back the holds of quota reservations that expired unsettled, and prune settled
    ones after a week (billing/sql/0007). Each user's next quota call releases theirs too, so
    a stopped worker delays this, never strands quota."""
    return billing_services.quota_reservations_release_expired()


@app.task(name=deferred.MAIL_QUOTA_ALERTS, queue=MAIL_QUEUE, retry=MAIL_RETRY)
def mail_quota_alerts(*, user_id: int) -> int:
    return alerts.alerts_notify(user_id=user_id)
