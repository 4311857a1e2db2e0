"""Quota alert mails: every alert (80 % and 100 % of tokens or cost) is mailed to its user once.

The SQL functions raise the alerts inside the quota flows and flag the transaction
(``app.alerts_raised``, billing/sql/0005). The flow's service reads the flag in the same
statement as the function (``current_setting('app.alerts_raised', true) = 'true'``: no extra
round trip) and, if set, asks for the mail to go out after commit (:func:`notify_after_commit`):
the mail never waits on, nor is sent from inside, the request's transaction. Sending marks the
alerts ``notified_at``; a mail that fails leaves them unmarked, so they are retried: by the
``mail_quota_alerts`` job's retries, then by the ``send_alert_mails`` sweep every 10 minutes
(witchcraft/tasks.py) or its command.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.db import connection, transaction

from billing.models import AlertMetric, AlertType, UsageAlert
from witchcraft.platform import deferred, rls
from witchcraft.platform.mail import mail_message, site_url

logger = logging.getLogger(__name__)

BATCH = 500


def notify_after_commit(*, user_id: int) -> None:
    """Mail the user's new alerts once the current transaction commits: the
    ``mail_quota_alerts`` job (witchcraft.platform.deferred), retried when the mail fails.

    With MAIL_IN_BACKGROUND off it happens at once, and a failure is only logged: it never
    fails the flow that raised the alert (the alerts wait, unmarked, for the sweep).
    """
    if settings.MAIL_IN_BACKGROUND:
        deferred.after_commit(deferred.MAIL_QUOTA_ALERTS, user_id=user_id)
        return
    try:
        alerts_notify(user_id=user_id)
    except Exception as exc:
        logger.warning(
            "alert mail for user %s failed (%s): the send_alert_mails sweep retries it",
            user_id,
            type(exc).__name__,
        )


def _describe(alert: UsageAlert) -> str:
    metric = "tokens" if alert.metric == AlertMetric.TOKENS else "cost"
    if alert.metric == AlertMetric.TOKENS:
        figures = f"{int(alert.value_at_trigger):,} of {int(alert.limit_at_trigger):,} tokens"
    else:
        figures = f"${alert.value_at_trigger:.2f} of ${alert.limit_at_trigger:.2f}"
    reached = "reached" if alert.alert_type == AlertType.EXCEEDED else "passed"
    return f"You have {reached} {alert.threshold_percent} % of your monthly {metric}: {figures}."


def alerts_notify(*, user_id: int | None = None, limit: int = BATCH) -> int:
    """Mail the unresolved alerts not mailed yet (the user's, or everyone's), one mail per
    user, and mark them notified. Returns how many alerts were mailed.

    Runs in the service context. Rows another worker is mailing are skipped (SKIP LOCKED). A
    user whose mail fails keeps their alerts unmarked (retried later); the others still go out.
    The last failure is raised after everyone else was served.
    """
    mailed = 0
    failure: Exception | None = None
    with transaction.atomic(), rls.service_context():
        pending = UsageAlert.objects.filter(notified_at__isnull=True, resolved_at__isnull=True)
        if user_id is not None:
            pending = pending.filter(user_id=user_id)
        alerts = list(
            pending.select_for_update(skip_locked=True, of=("self",))
            .select_related("user")
            .order_by("triggered_at", "id")[:limit]
        )
        by_user: dict[int, list[UsageAlert]] = defaultdict(list)
        for alert in alerts:
            by_user[alert.user_id].append(alert)
        for owner_alerts in by_user.values():
            owner = owner_alerts[0].user
            ids = [a.id for a in owner_alerts]
            if owner.deleted_at is not None or not owner.is_active:
                _mark(ids)  # nobody to tell: do not retry forever
                continue
            exceeded = any(a.alert_type == AlertType.EXCEEDED for a in owner_alerts)
            message = mail_message(
                to=owner.email,
                subject="You have used up your quota"
                if exceeded
                else "You are close to your quota",
                template="usage_alert",
                context={
                    "lines": [_describe(a) for a in owner_alerts],
                    "exceeded": exceeded,
                    "usage_link": site_url("/me/usage/"),
                    "plan_link": site_url("/me/plan/"),
                },
            )
            try:
                message.send()
            except Exception as exc:  # the SMTP server's failure: retried later
                logger.warning("alert mail to user %s not sent: %s", owner.pk, type(exc).__name__)
                failure = exc
                continue
            mailed += _mark(ids)
    if failure is not None:
        raise failure
    return mailed


def _mark(ids: list[int]) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT mark_alerts_notified(%s::bigint[])", [ids])
        return cursor.fetchone()[0]
