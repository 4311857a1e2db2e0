"""How backups stand, as the monitoring page, ``/metrics`` and ``/healthz`` show it: read from
``maintenance_runs`` (the backup jobs record their figures there: witchcraft.operations.pitr.jobs),
so the web processes need no access to the backup folder.

- the age of the last base backup (stale past BACKUP_STALE_HOURS, 26 by default);
- how far WAL archiving is behind: now less the time up to which WAL is known to be received
  (stale past WAL_STALE_MINUTES, 5 by default; a worker that stopped running the every-minute
  check makes it grow too);
- the recovery window: from the end of the oldest base backup to that time;
- the newest archived WAL segment and the bytes the receiver has still to write;
- the last run of each backup job, the last drill's result among them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from witchcraft.models import MaintenanceRun
from witchcraft.operations.pitr.jobs import BACKUP_JOBS, JOB_DRILL, JOB_WAL
from witchcraft.platform.durations import duration_text

OFF, OK, STALE = "off", "ok", "stale"


def _when(value: Any) -> datetime | None:
    """A summary's ISO time; one written without an offset is UTC (the jobs write UTC)."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else max(0.0, delta.total_seconds())


@dataclass(frozen=True)
class BackupStatus:
    enabled: bool
    now: datetime
    checked_at: datetime | None = None  # the last successful WAL archiving run's reading
    last_base_backup_end: datetime | None = None
    backups: int = 0
    oldest_restorable: datetime | None = None
    safe_through: datetime | None = None  # WAL received up to here: the newest restorable
    last_wal: str | None = None
    last_wal_archived_at: datetime | None = None
    lag_bytes: int | None = None
    receiver: str | None = None
    runs: dict[str, MaintenanceRun | None] = field(default_factory=dict)
    last_drill_ok: MaintenanceRun | None = None  # the last drill that succeeded

    @property
    def base_backup_age_seconds(self) -> float | None:
        end = self.last_base_backup_end
        return None if end is None else _seconds(self.now - end)

    @property
    def wal_behind_seconds(self) -> float | None:
        through = self.safe_through
        return None if through is None else _seconds(self.now - through)

    @property
    def newest_restorable(self) -> datetime | None:
        return self.safe_through

    @property
    def last_drill(self) -> MaintenanceRun | None:
        return self.runs.get(JOB_DRILL)

    @property
    def problems(self) -> list[str]:
        """Why backups are stale, in words (empty when they are not, or are off)."""
        if not self.enabled:
            return []
        found = []
        age = self.base_backup_age_seconds
        if age is None:
            found.append("no base backup has been taken")
        elif age > settings.BACKUP_STALE_HOURS * 3600:
            found.append(
                f"the last base backup is {age / 3600:.0f} h old "
                f"(more than {settings.BACKUP_STALE_HOURS} h)"
            )
        behind = self.wal_behind_seconds
        if behind is None:
            found.append("WAL archiving has not been seen working")
        elif behind > settings.WAL_STALE_MINUTES * 60:
            found.append(
                f"WAL archiving is {behind / 60:.0f} min behind "
                f"(more than {settings.WAL_STALE_MINUTES} min)"
            )
        return found

    @property
    def state(self) -> str:
        if not self.enabled:
            return OFF
        return STALE if self.problems else OK


# The last run of each backup job (any status), then the last successful WAL run (its summary
# holds the figures) and the last successful drill: (job, status or None) each.
_WANTED: tuple[tuple[str, str | None], ...] = (
    *((job, None) for job in BACKUP_JOBS),
    (JOB_WAL, MaintenanceRun.Status.SUCCEEDED),
    (JOB_DRILL, MaintenanceRun.Status.SUCCEEDED),
)
_COLUMNS = (
    "id",
    "job",
    "source",
    "scheduled_for",
    "started_at",
    "finished_at",
    "duration_ms",
    "status",
    "summary",
    "error",
    "queue_job_id",
)


def _last_runs() -> tuple[datetime, list[MaintenanceRun | None]]:
    """The database's ``now()`` and the run found for each of _WANTED (None where there is
    none): one query, one probe of maintenance_runs_job_started per entry."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT now(), m.id, m.job, m.source, m.scheduled_for, m.started_at, m.finished_at,"
            " m.duration_ms, m.status, m.summary::text, m.error, m.queue_job_id"
            " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS k(job, status, n)"
            " LEFT JOIN LATERAL (SELECT * FROM maintenance_runs r"
            "   WHERE r.job = k.job AND (k.status IS NULL OR r.status = k.status)"
            "   ORDER BY r.started_at DESC, r.id DESC LIMIT 1) m ON true"
            " ORDER BY k.n",
            [[job for job, _ in _WANTED], [status for _, status in _WANTED]],
        )
        rows = cursor.fetchall()
    found: list[MaintenanceRun | None] = []
    for _now, *values in rows:
        if values[0] is None:  # no such run
            found.append(None)
            continue
        summary = _COLUMNS.index("summary")
        values[summary] = json.loads(values[summary]) if values[summary] else {}
        found.append(MaintenanceRun.from_db(connection.alias, _COLUMNS, values))
    return rows[0][0], found


def backup_status() -> BackupStatus:
    """The backups' state now, from the last runs of the backup jobs (one query, an index probe
    per job; readable by staff, by the service and by the owner role /healthz uses)."""
    now, found = _last_runs()
    runs: dict[str, MaintenanceRun | None] = dict(zip(BACKUP_JOBS, found, strict=False))
    if not settings.PITR_ENABLED:
        return BackupStatus(enabled=False, now=now, runs=runs)
    wal, drill = found[len(BACKUP_JOBS) :]
    summary = wal.summary if wal is not None else {}
    lag_bytes = summary.get("lag_bytes")
    return BackupStatus(
        enabled=True,
        now=now,
        checked_at=_when(summary.get("checked_at")),
        last_base_backup_end=_when(summary.get("last_backup_end")),
        backups=int(summary.get("backups") or 0),
        oldest_restorable=_when(summary.get("oldest_restorable")),
        safe_through=_when(summary.get("safe_through")),
        last_wal=summary.get("last_wal"),
        last_wal_archived_at=_when(summary.get("last_wal_archived_at")),
        lag_bytes=None if lag_bytes is None else int(lag_bytes),
        receiver=summary.get("receiver"),
        runs=runs,
        last_drill_ok=drill,
    )


def _at(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _age(seconds: float | None) -> str:
    return duration_text(seconds, unknown="unknown")


def status_lines(status: BackupStatus) -> list[str]:
    """``manage.py backup --status``: the monitoring page's figures, in lines."""
    lines = [
        f"backups: {status.state}" + (f" ({'; '.join(status.problems)})" if status.problems else "")
    ]
    if status.enabled:
        lines += [
            f"last base backup: {_at(status.last_base_backup_end)} "
            f"({_age(status.base_backup_age_seconds)} ago; {status.backups} kept)",
            f"WAL: received up to {_at(status.safe_through)} "
            f"({_age(status.wal_behind_seconds)} behind; receiver {status.receiver or 'unknown'},"
            f" {status.lag_bytes if status.lag_bytes is not None else '?'} bytes to write)",
            f"last archived WAL segment: {status.last_wal or 'none'} "
            f"at {_at(status.last_wal_archived_at)}",
            f"recovery window: {_at(status.oldest_restorable)} to {_at(status.newest_restorable)}",
        ]
    for job, run in status.runs.items():
        if run is None:
            lines.append(f"{job}: never run")
        else:
            ended = run.error if run.status == MaintenanceRun.Status.FAILED else run.status
            lines.append(f"{job}: {_at(run.started_at)} {ended}")
    return lines
