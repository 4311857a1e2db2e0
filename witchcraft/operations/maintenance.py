"""The scheduled maintenance jobs: ``daily_maintenance()`` and ``monthly_maintenance()``, the
orchestrators over each domain's steps (their SQL lives in witchcraft/sql/functions/), and the
recording of every scheduled job's run, the backups' too (their work is Python:
witchcraft.operations.pitr.jobs passes it to :func:`maintenance_run`).

Running one SQL function as the service, and the commands' base, are on the ground floor
(witchcraft/platform/maintenance_command.py). The two scheduled jobs (:data:`JOBS`) run through
:func:`maintenance_run`, from the worker (witchcraft/tasks.py) and from their commands alike: never
two runs of a job at once (an advisory lock), each run recorded in ``maintenance_runs`` (when, how
long, the counts, or the one-line error) with an ``audit_logs`` row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from accounts import audit
from witchcraft.models import MaintenanceRun
from witchcraft.platform import retention, rls
from witchcraft.platform.maintenance_command import (
    MaintenanceCommand,
    error_line,
)

logger = logging.getLogger(__name__)

# The scheduled jobs and the SQL function each one runs; placeholders are filled from
# job_params (the retention settings: witchcraft/platform/retention.py).
JOBS: dict[str, str] = {
    "daily_maintenance": "SELECT public.daily_maintenance("
    "p_usage_archive_after_months => %(usage_archive_after_months)s,"
    " p_usage_partitions_per_run => %(usage_partitions_per_run)s,"
    " p_audit_compress_after_days => %(audit_compress_after_days)s,"
    " p_audit_rows_per_run => %(audit_rows_per_run)s)",
    "monthly_maintenance": "SELECT public.monthly_maintenance()",
}
AUDIT_EVENT = "maintenance_run"
# Jobs run every minute: a successful run writes no audit row (a failed one does), and its
# maintenance_runs row is pruned after a day (witchcraft/sql/policies/maintenance_runs.sql).
QUIET_JOBS = frozenset({"backup_wal"})
INTERRUPTED = "interrupted: the process running it stopped before it finished"


def job_params(job: str) -> dict[str, Any]:
    """The values of the placeholders of ``JOBS[job]``, read from the settings now."""
    return retention.daily_maintenance_params() if job == "daily_maintenance" else {}


class MaintenanceBusy(Exception):
    """Another run of the same job (a worker's or a command's) is in progress."""

    def __init__(self, job: str):
        super().__init__(f"{job}: another run is in progress (a worker's or a command's)")
        self.job = job


class MaintenanceFailed(Exception):
    """The job's SQL function failed; the run is recorded as failed with ``error``."""

    def __init__(self, job: str, error: str, run_id: int):
        super().__init__(error if error.startswith(job) else f"{job}: {error}")
        self.job, self.error, self.run_id = job, error, run_id


@contextmanager
def _exclusive(job: str) -> Iterator[None]:
    """Hold the job's session advisory lock for the block, or raise MaintenanceBusy.

    A session lock (not a transaction's) because a run spans several transactions; it goes
    with the connection if the process dies.
    """
    key = "SELECT {}(hashtext('witchcraft.maintenance'), hashtext(%s))"
    with connection.cursor() as cursor:
        cursor.execute(key.format("pg_try_advisory_lock"), [job])
        (locked,) = cursor.fetchone()
    if not locked:
        raise MaintenanceBusy(job)
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute(key.format("pg_advisory_unlock"), [job])
        except DatabaseError:  # the connection is gone, and its lock with it
            logger.warning("could not release the %s lock: the connection is gone", job)


def _covered(*, job: str, scheduled_for: datetime) -> bool:
    """Has a run of ``job`` that started at or after ``scheduled_for`` succeeded?

    Then the slot is covered: a worker that was away and defers several missed slots, or a
    command run by hand after the slot, leads to one run, not one per slot.
    """
    with transaction.atomic(), rls.service_context():
        return MaintenanceRun.objects.filter(
            job=job, status=MaintenanceRun.Status.SUCCEEDED, started_at__gte=scheduled_for
        ).exists()


def _audit_run(*, run_id: int, job: str, source: str, status: str, **details: Any) -> None:
    audit.audit_event(
        AUDIT_EVENT,
        details={"job": job, "source": source, "status": status, "run_id": run_id, **details},
        target_type="maintenance_run",
        target_id=run_id,
        severity="warning" if status == MaintenanceRun.Status.FAILED else "info",
    )


def _start(*, job: str, source: str, scheduled_for: datetime | None, queue_job_id: int | None):
    """Record the run as running (committed before the work starts); return its id."""
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        # We hold the job's lock, so a run of it still marked running died with its process.
        cursor.execute(
            "UPDATE maintenance_runs SET status = 'failed', error = %s,"
            " finished_at = clock_timestamp() WHERE job = %s AND status = 'running'"
            " RETURNING id, source",
            [INTERRUPTED, job],
        )
        for stale_id, stale_source in cursor.fetchall():
            _audit_run(
                run_id=stale_id, job=job, source=stale_source, status="failed", error=INTERRUPTED
            )
        cursor.execute(
            "INSERT INTO maintenance_runs (job, source, scheduled_for, queue_job_id)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            [job, source, scheduled_for, queue_job_id],
        )
        return cursor.fetchone()[0]


def _finish(
    *, run_id: int, job: str, source: str, status: str, summary: dict | None = None, error=""
) -> None:
    """Close the run and write its audit row (in the caller's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE maintenance_runs SET status = %s, finished_at = now_.t, summary = %s::jsonb,"
            " error = %s, duration_ms = greatest(0, round(extract(epoch FROM now_.t - started_at)"
            " * 1000))::integer FROM (SELECT clock_timestamp() AS t) now_ WHERE id = %s"
            " RETURNING duration_ms",
            [status, json.dumps(summary or {}), error, run_id],
        )
        (duration_ms,) = cursor.fetchone()
    if job in QUIET_JOBS and status == MaintenanceRun.Status.SUCCEEDED:
        return  # every minute: the run's row says it; the audit trail keeps the failures
    details: dict[str, Any] = {"duration_ms": duration_ms}
    if summary is not None:
        details["counts"] = summary
    if error:
        details["error"] = error
    _audit_run(run_id=run_id, job=job, source=source, status=status, **details)


def _sql_work(job: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(JOBS[job], job_params(job))
        (summary,) = cursor.fetchone()
    return json.loads(summary) if isinstance(summary, str | bytes) else summary


def maintenance_run(
    *,
    job: str,
    source: str,
    scheduled_for: datetime | None = None,
    queue_job_id: int | None = None,
    work: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Run the scheduled ``job`` as the service, recorded; return its counts.

    The job is a key of JOBS (its SQL function, in one transaction) or, with ``work``, a
    Python function that returns the run's summary (the backups: witchcraft.operations.pitr),
    run outside any transaction, its exceptions recorded like the SQL's.

    ``source`` is ``MaintenanceRun.Source``; a scheduled run passes its slot (``scheduled_for``)
    and returns None, doing nothing, when a run that started at or after the slot already
    succeeded. Raises MaintenanceBusy when another run of the job is in progress, and
    MaintenanceFailed (the run recorded as failed, the work rolled back) when the SQL fails.
    """
    with _exclusive(job):
        if scheduled_for is not None and _covered(job=job, scheduled_for=scheduled_for):
            logger.info("%s: the slot of %s is covered by a later run; skipped", job, scheduled_for)
            return None
        run_id = _start(
            job=job, source=source, scheduled_for=scheduled_for, queue_job_id=queue_job_id
        )
        try:
            if work is None:
                with transaction.atomic(), rls.service_context():
                    summary = _sql_work(job)
                    _finish(
                        run_id=run_id, job=job, source=source, status="succeeded", summary=summary
                    )
            else:  # outside a transaction: it runs programs, and may take a long time
                summary = work()
                with transaction.atomic(), rls.service_context():
                    _finish(
                        run_id=run_id, job=job, source=source, status="succeeded", summary=summary
                    )
        except Exception as exc:
            error = error_line(exc)
            try:
                with transaction.atomic(), rls.service_context():
                    _finish(run_id=run_id, job=job, source=source, status="failed", error=error)
            except DatabaseError:  # left 'running': the next run closes it as interrupted
                logger.exception("%s: could not record the failure of run %s", job, run_id)
            raise MaintenanceFailed(job, error, run_id) from exc
    return summary


class JobCommand(MaintenanceCommand):
    """The command of a scheduled job (a key of JOBS): recorded in ``maintenance_runs`` and
    never run beside the worker's run; ``--dry-run`` runs it unrecorded and rolls it back."""

    def get_params(self, options: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        return job_params(self.job_name)

    def summary_get(self, *, dry_run: bool, options: dict[str, Any]) -> dict[str, Any]:
        if dry_run:
            return super().summary_get(dry_run=dry_run, options=options)
        try:
            return maintenance_run(job=self.job_name, source=MaintenanceRun.Source.COMMAND)
        except (MaintenanceBusy, MaintenanceFailed) as exc:
            raise CommandError(str(exc)) from exc
