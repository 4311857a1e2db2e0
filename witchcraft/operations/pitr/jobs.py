"""The backup jobs of the worker (witchcraft/tasks.py) and of ``manage.py backup``, each run
recorded in ``maintenance_runs`` through witchcraft.operations.maintenance:

- ``backup_wal``, every minute: ``barman cron`` (starts the WAL receiver if it is not running,
  moves the streamed segments into the archive, applies the retention policy), then the state
  of archiving read from the server and the catalogue (the run's summary: what the monitoring
  page, ``/metrics`` and ``/healthz`` show). Takes the first base backup when there is none;
- ``backup_base``, daily: a base backup (``barman backup --wait``);
- ``backup_logical``, daily: the logical dump of ``manage.py backup``, kept by age;
- ``backup_drill``, weekly: the latest backup restored into a scratch server, verified, and
  removed (witchcraft.operations.pitr.restore).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction

from witchcraft.models import MaintenanceRun
from witchcraft.operations import maintenance
from witchcraft.operations.backups import backup_create
from witchcraft.operations.pitr import barman, restore
from witchcraft.operations.pitr.errors import PitrError
from witchcraft.platform import embedded_db, rls

logger = logging.getLogger(__name__)

JOB_WAL = "backup_wal"
JOB_BASE = "backup_base"
JOB_LOGICAL = "backup_logical"
JOB_DRILL = "backup_drill"
BACKUP_JOBS = (JOB_WAL, JOB_BASE, JOB_LOGICAL, JOB_DRILL)
BASE_BACKUP_TIMEOUT_S = 6 * 3600
FIRST_WAL_TIMEOUT_S = 120
RECEIVER_START_S = 60
BACKUP_WAL_WAIT_S = 1800
# Left in Barman's server folder when the slot was lost, until the next base backup: the WAL
# check takes one at once (and again each minute until one succeeds).
GAP_MARKER = "witchcraft-wal-gap"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def logical_backup() -> dict[str, Any]:
    result = backup_create()
    return {
        "file": result.path.name,
        "size_bytes": result.size,
        "tables": result.tables,
        "rows": result.rows,
        "pruned": len(result.pruned),
        "seconds": round(result.seconds, 1),
    }


def base_backup() -> dict[str, Any]:
    """Take a base backup now; its id, size, time taken and end (the earliest time it restores
    to). Raises PitrError when Barman fails or the backup did not finish."""
    setup = barman.prepare()
    started = time.monotonic()
    if barman.last_archived_wal() is None:
        # Barman takes no first backup before WAL archiving is proven: start the receiver and
        # have the server close its current segment, then wait for it in the archive.
        barman.run(setup, "cron", timeout=600)
        barman.run(
            setup,
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            str(FIRST_WAL_TIMEOUT_S),
            barman.SERVER_NAME,
            timeout=FIRST_WAL_TIMEOUT_S + 30,
        )
    _wait_streaming(setup)
    barman.run(
        setup,
        "backup",
        "--wait",  # until the WAL that makes it consistent is archived, but not for ever
        "--wait-timeout",
        str(BACKUP_WAL_WAIT_S),
        barman.SERVER_NAME,
        timeout=BASE_BACKUP_TIMEOUT_S,
    )
    seconds = time.monotonic() - started
    backups = barman.base_backups()
    newest = max(backups, key=lambda b: b.begin_time, default=None)
    if newest is None or not newest.done:
        status = newest.status if newest else "missing"
        raise PitrError(f"the base backup did not finish (Barman says {status})")
    (barman.server_dir() / GAP_MARKER).unlink(missing_ok=True)  # restores start after the gap
    return {
        "backup_id": newest.backup_id,
        "size_bytes": newest.size_bytes,
        "seconds": round(seconds, 1),
        "end_time": _iso(newest.end_time),
        "backups": len([b for b in backups if b.done]),
    }


def _previous_safe_through() -> str | None:
    with transaction.atomic(), rls.service_context():
        run = (
            MaintenanceRun.objects.filter(job=JOB_WAL, status=MaintenanceRun.Status.SUCCEEDED)
            .order_by("-started_at")
            .only("summary")
            .first()
        )
    return run.summary.get("safe_through") if run is not None else None


def wal_state(setup: barman.Setup) -> dict[str, Any]:
    """Where archiving stands: the server's WAL position, what the receiver has written, the
    newest archived segment, and the time up to which WAL is known to be received
    (``safe_through``: now, less the receiver's reported lag, while it streams; else what the
    previous run knew)."""
    assert setup.server is not None
    with setup.server.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT now(), pg_current_wal_lsn()::text, s.slot_name IS NOT NULL, r.state,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(r.write_lsn, s.restart_lsn))::bigint,"
            " now() - coalesce(r.write_lag, interval '0')"
            " FROM (SELECT 1) one"
            " LEFT JOIN pg_replication_slots s ON s.slot_name = %s"
            " LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid",
            [barman.SLOT_NAME],
        ).fetchone()
    now, lsn, slot, receiver, lag_bytes, written_until = row
    streaming = receiver == "streaming"
    safe_through = _iso(written_until) if streaming else _previous_safe_through()
    done = [b for b in barman.base_backups() if b.done]
    wal = barman.last_archived_wal()
    return {
        "checked_at": _iso(now),
        "current_lsn": lsn,
        "slot": slot,
        "receiver": "streaming" if streaming else (receiver or "stopped"),
        "lag_bytes": lag_bytes,
        "safe_through": safe_through,
        "last_wal": wal.name if wal else None,
        "last_wal_archived_at": _iso(wal.archived_at) if wal else None,
        "backups": len(done),
        "last_backup_id": done[-1].backup_id if done else None,
        "last_backup_end": _iso(done[-1].end_time) if done else None,
        "oldest_restorable": _iso(done[0].end_time) if done else None,
    }


def _wait_streaming(setup: barman.Setup, seconds: float = RECEIVER_START_S) -> None:
    """Barman refuses a backup until its receiver streams through the slot; the receiver that
    ``barman cron`` starts takes a moment: wait for it (starting it if none runs)."""
    assert setup.server is not None
    deadline = time.monotonic() + seconds
    with setup.server.connect(autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", [barman.SLOT_NAME]
            ).fetchone()
            if row is not None and row[0]:
                return
            if time.monotonic() > deadline:
                raise PitrError(
                    f"the WAL receiver did not start streaming within {seconds:.0f} s: see "
                    f"{barman.config_dir() / 'barman.log'}"
                )
            barman.run(setup, "cron", timeout=600)
            time.sleep(1)


def _slot_lost(setup: barman.Setup) -> bool:
    """Has the server dropped the WAL the slot held (the receiver was away longer than the
    server's max_slot_wal_keep_size allows)? Then the archive has a gap."""
    assert setup.server is not None
    with setup.server.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", [barman.SLOT_NAME]
        ).fetchone()
    return row is not None and row[0] == "lost"


def _replace_slot(setup: barman.Setup) -> None:
    """A new slot from the server's current position; the receiver starts again from there."""
    logger.error(
        "the WAL receiver's slot %s was lost: WAL from its last position to now is missing, so "
        "no restore can reach a time in that gap; a new base backup is taken",
        barman.SLOT_NAME,
    )
    with contextlib.suppress(PitrError):  # no receiver running: nothing to stop
        barman.run(setup, "receive-wal", "--stop", barman.SERVER_NAME)
    barman.run(setup, "receive-wal", "--drop-slot", barman.SERVER_NAME)
    barman.run(setup, "receive-wal", "--reset", barman.SERVER_NAME)
    barman.run(setup, "receive-wal", "--create-slot", barman.SERVER_NAME)


def _prune_wal_runs() -> int:
    """Delete this job's runs older than a day (the policy allows nothing else)."""
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM maintenance_runs WHERE job = %s AND status <> 'running'"
            " AND started_at < now() - interval '1 day'",
            [JOB_WAL],
        )
        return cursor.rowcount


def archive_wal(source: str = MaintenanceRun.Source.SCHEDULE) -> Callable[[], dict[str, Any]]:
    def work() -> dict[str, Any]:
        setup = barman.prepare()
        lost = _slot_lost(setup)
        if lost:
            gap = barman.server_dir() / GAP_MARKER
            gap.write_text(datetime.now(UTC).isoformat())  # until a base backup follows it
            _replace_slot(setup)
        barman.run(setup, "cron", timeout=600)
        first = None
        if (barman.server_dir() / GAP_MARKER).exists() or not any(
            b.done for b in barman.base_backups()
        ):
            # Archiving restores nothing without a base backup to start from (and after a lost
            # slot, nothing past the gap): take one now.
            first = run(JOB_BASE, source=source)
        state = wal_state(setup)
        state["first_base_backup"] = (first or {}).get("backup_id")
        state["slot_lost"] = lost
        state["pruned_runs"] = _prune_wal_runs()
        return state

    return work


def drill() -> dict[str, Any]:
    """Restore the latest point into a scratch folder and port, verify it, then remove it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    restored = restore.restore_to(target=None, directory=embedded_db.data_dir() / "drills" / stamp)
    try:
        lag = None
        if restored.replayed_to is not None:
            lag = round((datetime.now(UTC) - restored.replayed_to) / timedelta(seconds=1), 1)
        return {
            "verified": True,
            "backup_id": restored.backup.backup_id,
            "replayed_to": _iso(restored.replayed_to),
            "replayed_behind_seconds": lag,
            "tables": restored.tables,
            "rows": restored.rows,
            "critical": restored.critical,
            "manifest_files": restored.manifest_files,
            "seconds": round(restored.seconds, 1),
        }
    finally:
        restore.discard(restored)


def _work(job: str, source: str) -> Callable[[], dict[str, Any]]:
    if job == JOB_WAL:
        return archive_wal(source)
    return {JOB_BASE: base_backup, JOB_LOGICAL: logical_backup, JOB_DRILL: drill}[job]


def run(
    job: str,
    *,
    source: str,
    scheduled_for: datetime | None = None,
    queue_job_id: int | None = None,
) -> dict[str, Any] | None:
    """Run one backup job, recorded (see maintenance.maintenance_run for what it raises)."""
    return maintenance.maintenance_run(
        job=job,
        source=source,
        scheduled_for=scheduled_for,
        queue_job_id=queue_job_id,
        work=_work(job, source),
    )
