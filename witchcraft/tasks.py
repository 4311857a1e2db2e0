"""The project's own jobs of the worker (procrastinate.contrib.django imports the ``tasks.py``
of every app: each domain keeps its jobs there, accounts/, billing/, usage/):

- the scheduled maintenance: ``daily_maintenance`` at DAILY_MAINTENANCE_CRON and
  ``monthly_maintenance`` at MONTHLY_MAINTENANCE_CRON (UTC crons, read when the worker starts),
  recorded in ``maintenance_runs`` (witchcraft.operations.maintenance);
- a mail queued after a commit (witchcraft/platform/deferred.py): its arguments are stored in
  the queue, so they carry ids, addresses and links, never a token (the job makes it);
- the queue's upkeep: jobs a dead worker left running are retried, finished jobs pruned;
- backups (witchcraft.operations.pitr.jobs): WAL archiving checked every minute (Barman's
  cron: the receiver kept streaming), a base backup at BACKUP_BASE_CRON, the logical dump at
  BACKUP_LOGICAL_CRON and the restore drill at BACKUP_DRILL_CRON (weekly), each recorded in
  ``maintenance_runs``; off with BACKUP_SCHEDULE=false (and all but the dump with
  PITR_ENABLED=false);
- staff notifications: every minute the monitoring alerts and new quota alerts are compared with
  what staff were last told (``check_staff_notifications``), and each change is delivered by
  one job per channel (``deliver_staff_notification``, mail or webhook, retried on its own:
  witchcraft.operations.notifications).

Never twice at once: each scheduled job has a queueing lock (one waiting job at most) and a
lock (one running job at most); maintenance also takes an advisory lock that its command
shares. A worker that was down defers, when it starts, the last slot it missed (within
PROCRASTINATE_PERIODIC_DEFAULTS' max_delay); a run that finds its slot already covered by a
later successful run does nothing, so missed slots give one run, not one each.

Run the worker with ``manage.py worker`` (``make worker``; witchcraft/operations/worker.py keeps it
running through database restarts).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from procrastinate import JobContext, RetryStrategy, exceptions
from procrastinate.contrib.django import app
from procrastinate.jobs import Status

from witchcraft.models import MaintenanceRun
from witchcraft.operations import maintenance, notifications
from witchcraft.operations.pitr import jobs as pitr_jobs
from witchcraft.platform import deferred
from witchcraft.platform.mail import mail_deliver
from witchcraft.platform.queues import MAIL_QUEUE, MAIL_RETRY, MAINTENANCE_QUEUE, UPKEEP_QUEUE

logger = logging.getLogger(__name__)

STALLED_JOBS_CRON = "*/5 * * * *"
NOTIFY_CHECK_CRON = "* * * * *"
PRUNE_JOBS_CRON = "30 3 * * *"
# Failed, cancelled and aborted jobs stay this long for inspection (succeeded ones are deleted
# when they finish: PROCRASTINATE_WORKER_DEFAULTS["delete_jobs"]).
FINISHED_JOBS_KEPT_HOURS = 14 * 24

# A maintenance run that failed, or met a run of its command, is tried once more 10 min later.
MAINTENANCE_RETRY = RetryStrategy(
    max_attempts=1,
    wait=600,
    retry_exceptions=[maintenance.MaintenanceFailed, maintenance.MaintenanceBusy],
)

# A base backup or a dump that failed is tried again an hour later, twice.
BACKUP_RETRY = RetryStrategy(
    max_attempts=2,
    wait=3600,
    retry_exceptions=[maintenance.MaintenanceFailed, maintenance.MaintenanceBusy],
)


def _scheduled(job: str, context: JobContext, timestamp: int) -> dict[str, Any] | None:
    return maintenance.maintenance_run(
        job=job,
        source=MaintenanceRun.Source.SCHEDULE,
        scheduled_for=datetime.fromtimestamp(timestamp, UTC),
        queue_job_id=context.job.id,
    )


# --- scheduled maintenance --------------------------------------------------------------------


@app.periodic(cron=settings.DAILY_MAINTENANCE_CRON, periodic_id="daily_maintenance")
@app.task(
    name="daily_maintenance",
    queue=MAINTENANCE_QUEUE,
    lock="daily_maintenance",
    queueing_lock="daily_maintenance",
    pass_context=True,
    retry=MAINTENANCE_RETRY,
)
def daily_maintenance(context: JobContext, timestamp: int) -> dict[str, Any] | None:
    """The seed's 2 AM job (``daily_maintenance()``), recorded; its counts, or None when its
    slot was already covered."""
    return _scheduled("daily_maintenance", context, timestamp)


@app.periodic(cron=settings.MONTHLY_MAINTENANCE_CRON, periodic_id="monthly_maintenance")
@app.task(
    name="monthly_maintenance",
    queue=MAINTENANCE_QUEUE,
    lock="monthly_maintenance",
    queueing_lock="monthly_maintenance",
    pass_context=True,
    retry=MAINTENANCE_RETRY,
)
def monthly_maintenance(context: JobContext, timestamp: int) -> dict[str, Any] | None:
    """The seed's 1st-of-the-month job (``monthly_maintenance()``), recorded."""
    return _scheduled("monthly_maintenance", context, timestamp)


# --- backups (witchcraft.operations.pitr.jobs) ---------------------------------------------

WAL_ARCHIVE_CRON = "* * * * *"


def _backup(job: str, context: JobContext, timestamp: int) -> dict[str, Any] | None:
    """Run one backup job for its slot, recorded; nothing when BACKUP_SCHEDULE is off, or when
    the job is point-in-time recovery's and PITR_ENABLED is off."""
    if not settings.BACKUP_SCHEDULE:
        return None
    if job != pitr_jobs.JOB_LOGICAL and not settings.PITR_ENABLED:
        return None
    return pitr_jobs.run(
        job,
        source=MaintenanceRun.Source.SCHEDULE,
        scheduled_for=datetime.fromtimestamp(timestamp, UTC),
        queue_job_id=context.job.id,
    )


@app.periodic(cron=WAL_ARCHIVE_CRON, periodic_id="backup_wal")
@app.task(
    name="backup_wal",
    queue=MAINTENANCE_QUEUE,
    lock="backup_wal",
    queueing_lock="backup_wal",
    pass_context=True,
)
def backup_wal(context: JobContext, timestamp: int) -> dict[str, Any] | None:
    """Every minute: Barman's cron (the WAL receiver kept running, streamed segments archived,
    retention applied) and the state of archiving, recorded."""
    return _backup(pitr_jobs.JOB_WAL, context, timestamp)


@app.periodic(cron=settings.BACKUP_BASE_CRON, periodic_id="backup_base")
@app.task(
    name="backup_base",
    queue=MAINTENANCE_QUEUE,
    lock="backup_base",
    queueing_lock="backup_base",
    pass_context=True,
    retry=BACKUP_RETRY,
)
def backup_base(context: JobContext, timestamp: int) -> dict[str, Any] | None:
    """The daily base backup (BACKUP_BASE_CRON), recorded."""
    return _backup(pitr_jobs.JOB_BASE, context, timestamp)


@app.periodic(cron=settings.BACKUP_LOGICAL_CRON, periodic_id="backup_logical")
@app.task(
    name="backup_logical",
    queue=MAINTENANCE_QUEUE,
    lock="backup_logical",
    queueing_lock="backup_logical",
    pass_context=True,
    retry=BACKUP_RETRY,
)
def backup_logical(context: JobContext, timestamp: int) -> dict[str, Any] | None:
    """The daily logical dump (BACKUP_LOGICAL_CRON), kept by age, recorded."""
    return _backup(pitr_jobs.JOB_LOGICAL, context, timestamp)


@app.periodic(cron=settings.BACKUP_DRILL_CRON, periodic_id="backup_drill")
@app.task(
    name="backup_drill",
    queue=MAINTENANCE_QUEUE,
    lock="backup_drill",
    queueing_lock="backup_drill",
    pass_context=True,
)
def backup_drill(context: JobContext, timestamp: int) -> dict[str, Any] | None:
    """The weekly restore drill (BACKUP_DRILL_CRON): the latest point restored into a scratch
    server, verified and removed, recorded."""
    return _backup(pitr_jobs.JOB_DRILL, context, timestamp)


# --- a mail queued after a commit (witchcraft/platform/deferred.py) -------------------------


@app.task(name=deferred.SEND_MAIL, queue=MAIL_QUEUE, retry=MAIL_RETRY)
def send_mail(*, to: str, subject: str, template: str, context: dict[str, Any]) -> None:
    mail_deliver(to=to, subject=subject, template=template, context=context)


# --- staff notifications (witchcraft.operations.notifications) ------------------------------

# A delivery that failed for a reason that may pass (the webhook answered 5xx or timed out, the
# mail server failed) is tried again 5, 25, 125, 625 and 3125 s later, about an hour in all; one
# refused (4xx, no longer configured) is not.
NOTIFY_RETRY = RetryStrategy(
    max_attempts=5, exponential_wait=5, retry_exceptions=[notifications.DeliveryFailed]
)


@app.periodic(cron=NOTIFY_CHECK_CRON, periodic_id="check_staff_notifications")
@app.task(
    name="check_staff_notifications",
    queue=UPKEEP_QUEUE,
    lock="check_staff_notifications",
    queueing_lock="check_staff_notifications",
)
def check_staff_notifications(timestamp: int) -> dict[str, int]:
    """Tell staff what changed since the last run: monitoring alerts firing or resolved, new
    quota alerts; returns how many notifications and delivery jobs."""
    return notifications.notifications_check()


@app.task(name=notifications.DELIVER_TASK, queue=MAIL_QUEUE, retry=NOTIFY_RETRY)
def deliver_staff_notification(*, notification_id: int, channel: str) -> str:
    """Send one notification on one channel (its id and the channel only: the webhook's
    address is read from the settings, never stored in the queue)."""
    return notifications.notification_deliver(notification_id=notification_id, channel=channel)


# --- the queue's upkeep -----------------------------------------------------------------------


@app.periodic(cron=STALLED_JOBS_CRON, periodic_id="retry_stalled_jobs")
@app.task(
    name="retry_stalled_jobs",
    queue=UPKEEP_QUEUE,
    queueing_lock="retry_stalled_jobs",
    pass_context=True,
)
async def retry_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Put back in the queue the jobs whose worker died while running them (no heartbeat for
    WORKER_STALE_SECONDS): a scheduled job left running would otherwise hold its lock for
    ever. One whose schedule has queued a newer job meanwhile is marked failed instead.
    Returns how many were put back."""
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=settings.WORKER_STALE_SECONDS)
    retried = 0
    for job in stalled:
        try:
            await manager.retry_job(job)
            retried += 1
        except exceptions.UniqueViolation:
            await manager.finish_job(job=job, status=Status.FAILED, delete_job=False)
        logger.warning("job %s (%s) was left running by a dead worker", job.id, job.task_name)
    return retried


@app.periodic(cron=PRUNE_JOBS_CRON, periodic_id="prune_finished_jobs")
@app.task(
    name="prune_finished_jobs",
    queue=UPKEEP_QUEUE,
    queueing_lock="prune_finished_jobs",
    pass_context=True,
)
async def prune_finished_jobs(context: JobContext, timestamp: int) -> None:
    """Delete the jobs that ended (failed, cancelled, aborted) over FINISHED_JOBS_KEPT_HOURS
    ago, with their events."""
    await context.app.job_manager.delete_old_jobs(
        nb_hours=FINISHED_JOBS_KEPT_HOURS,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
