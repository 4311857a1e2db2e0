"""The job queue as ``/healthz`` and the monitoring page see it: the worker's heartbeat, the
jobs waiting, the last maintenance runs; and :func:`run_due_jobs`, the worker run once here.

procrastinate's workers record a heartbeat every 10 seconds in ``procrastinate_workers`` and
delete their row when they stop; a worker killed leaves its row, going stale.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from witchcraft.models import MaintenanceRun
from witchcraft.operations.maintenance import JOBS

WORKER_OK, WORKER_STALE, WORKER_NONE = "ok", "stale", "none"
RECENT_RUNS = 20


def worker_status(*, last_heartbeat: datetime | None, now: datetime) -> str:
    """``none`` without any heartbeat, ``stale`` when the last one is older than
    WORKER_STALE_SECONDS, ``ok`` otherwise."""
    if last_heartbeat is None:
        return WORKER_NONE
    if now - last_heartbeat > timedelta(seconds=settings.WORKER_STALE_SECONDS):
        return WORKER_STALE
    return WORKER_OK


def worker_heartbeat() -> dict[str, Any]:
    """The newest heartbeat of any worker and its status, read directly (the owner role of
    /healthz; one indexed query): ``{"last_heartbeat": datetime | None, "status": str}``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(last_heartbeat), now() FROM procrastinate_workers")
        last_heartbeat, now = cursor.fetchone()
    return {
        "last_heartbeat": last_heartbeat,
        "status": worker_status(last_heartbeat=last_heartbeat, now=now),
    }


def job_queue() -> dict[str, Any]:
    """The workers and the queue for staff, through ``monitoring_job_queue()`` (the runtime
    role has no grant on procrastinate's tables): workers, last heartbeat and its status, and
    the jobs waiting (``due`` of them now), running and failed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT out_workers, out_last_heartbeat, out_now, out_waiting, out_due,"
            " out_running, out_failed FROM monitoring_job_queue()"
        )
        workers, last_heartbeat, now, waiting, due, running, failed = cursor.fetchone()
    return {
        "workers": workers,
        "last_heartbeat": last_heartbeat,
        "status": worker_status(last_heartbeat=last_heartbeat, now=now),
        "stale_after": settings.WORKER_STALE_SECONDS,
        "waiting": waiting,
        "due": due,
        "running": running,
        "failed": failed,
    }


def last_runs(jobs: tuple[str, ...] = tuple(JOBS)) -> dict[str, dict[str, Any] | None]:
    """The last run of each of ``jobs`` (one query, one index probe per job), or None for a job
    that never ran: ``{"started_at", "finished_at", "scheduled_for", "status", "source"}``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT j.job, r.started_at, r.finished_at, r.scheduled_for, r.status, r.source"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS j(job, n)"
            " LEFT JOIN LATERAL (SELECT m.started_at, m.finished_at, m.scheduled_for, m.status,"
            "   m.source FROM maintenance_runs m WHERE m.job = j.job"
            "   ORDER BY m.started_at DESC LIMIT 1) r ON true"
            " ORDER BY j.n",
            [list(jobs)],
        )
        rows = cursor.fetchall()
    return {
        job: None
        if started_at is None
        else {
            "started_at": started_at,
            "finished_at": finished_at,
            "scheduled_for": scheduled_for,
            "status": status,
            "source": source,
        }
        for job, started_at, finished_at, scheduled_for, status, source in rows
    }


def recent_runs(*, limit: int = RECENT_RUNS) -> list[MaintenanceRun]:
    """The latest runs of every job, newest first (maintenance_runs_started); the every-minute
    WAL check shows only when it failed (its figures are in the page's Backups section)."""
    runs = MaintenanceRun.objects.exclude(job="backup_wal", status=MaintenanceRun.Status.SUCCEEDED)
    return list(runs.order_by("-started_at", "-id")[:limit])


def run_due_jobs(*, queues: list[str] | None = None, delete_jobs: str | None = None) -> None:
    """Run every job that is due now, in this process, then return.

    The worker of ``manage.py procrastinate worker --one-shot`` without its schedules (it defers
    nothing new), on its own connections: the jobs see committed data only. For tests and
    scripts; ``delete_jobs`` overrides PROCRASTINATE_WORKER_DEFAULTS' (``"never"`` keeps the
    finished jobs to look at).
    """
    from procrastinate.contrib.django import DjangoApp, app

    runner = DjangoApp(
        connector=app.connector.get_worker_connector(),
        worker_defaults=settings.PROCRASTINATE_WORKER_DEFAULTS,
    )
    runner.tasks = app.tasks  # the same jobs; its periodic registry stays empty
    options: dict[str, Any] = {
        "wait": False,
        "listen_notify": False,
        "install_signal_handlers": False,
        "name": "run_due_jobs",
    }
    if queues:
        options["queues"] = queues
    if delete_jobs:
        options["delete_jobs"] = delete_jobs
    runner.run_worker(**options)
