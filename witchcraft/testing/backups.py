"""Backup jobs' runs as witchcraft.operations.pitr.jobs records them in ``maintenance_runs``,
backdated, for the tests of what /healthz, /metrics and the monitoring page show (Barman does
not run: the summaries are the ones its jobs write)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from witchcraft.models import MaintenanceRun

SEGMENT = "000000010000000000000042"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def backup_run(
    job: str,
    *,
    ago: timedelta,
    status: str = MaintenanceRun.Status.SUCCEEDED,
    summary: dict[str, Any] | None = None,
    error: str = "",
) -> MaintenanceRun:
    """One finished run of ``job``, started ``ago`` before now (written as the test's owner
    role)."""
    started = datetime.now(UTC) - ago
    return MaintenanceRun.objects.create(
        job=job,
        source=MaintenanceRun.Source.SCHEDULE,
        scheduled_for=started.replace(second=0, microsecond=0),
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        duration_ms=2000,
        status=status,
        summary=summary or {},
        error=error,
    )


def wal_summary(
    *,
    base_age: timedelta = timedelta(hours=3),
    behind: timedelta = timedelta(seconds=40),
    oldest_age: timedelta = timedelta(days=8),
    backups: int = 7,
    lag_bytes: int = 2048,
    receiver: str = "streaming",
) -> dict[str, Any]:
    """The summary of a ``backup_wal`` run: the last base backup ended ``base_age`` ago, WAL
    received up to ``behind`` ago."""
    now = datetime.now(UTC)
    return {
        "checked_at": _iso(now - behind + timedelta(seconds=5)),
        "current_lsn": "0/42000060",
        "slot": True,
        "receiver": receiver,
        "lag_bytes": lag_bytes,
        "safe_through": _iso(now - behind),
        "last_wal": SEGMENT,
        "last_wal_archived_at": _iso(now - behind - timedelta(minutes=2)),
        "backups": backups,
        "last_backup_id": "20261207T030000",
        "last_backup_end": _iso(now - base_age),
        "oldest_restorable": _iso(now - oldest_age),
        "first_base_backup": None,
        "pruned_runs": 0,
    }


def healthy_backups() -> dict[str, MaintenanceRun]:
    """A minute's WAL run, last night's base backup and logical dump, a drill that passed."""
    return {
        "backup_wal": backup_run("backup_wal", ago=timedelta(seconds=40), summary=wal_summary()),
        "backup_base": backup_run(
            "backup_base",
            ago=timedelta(hours=3, minutes=5),
            summary={"backup_id": "20261207T030000", "size_bytes": 52428800, "seconds": 300.0},
        ),
        "backup_logical": backup_run(
            "backup_logical",
            ago=timedelta(hours=2),
            summary={
                "file": "witchcraft-20261207T040000Z.dump",
                "size_bytes": 3145728,
                "tables": 31,
                "rows": 1200,
                "pruned": 1,
                "seconds": 4.2,
            },
        ),
        "backup_drill": backup_run(
            "backup_drill",
            ago=timedelta(days=2),
            summary={
                "verified": True,
                "backup_id": "20261205T030000",
                "tables": 31,
                "rows": 1187,
                "seconds": 41.5,
            },
        ),
    }
