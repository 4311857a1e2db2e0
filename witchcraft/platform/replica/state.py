"""The replica's state for /healthz, /metrics and the monitoring page: read fresh from both
servers each time (the read path keeps its own, cheaper view: reads.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connections

from witchcraft.platform.replica import positions
from witchcraft.platform.replica.reads import ALIAS, PRIMARY, configured

ABSENT = "absent"  # no DATABASE_REPLICA_URL
OK = "ok"
LAGGING = "lagging"
DOWN = "down"


@dataclass(frozen=True)
class ReplicaStatus:
    state: str  # ABSENT, OK, LAGGING or DOWN
    lag_bytes: int | None = None  # the primary's WAL position minus the replica's replayed one
    lag_seconds: float | None = (
        None  # 0 when it has replayed everything, else since its last commit
    )
    replayed_at: datetime | None = None  # the last commit it replayed
    problem: str = ""  # why it is down or lagging, in one sentence

    @property
    def usable(self) -> bool:
        return self.state == OK


def replica_status() -> ReplicaStatus:
    if not configured():
        return ReplicaStatus(ABSENT)
    replica = connections[ALIAS]
    try:
        with replica.cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                " pg_last_xact_replay_timestamp(),"
                " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
            )
            standby, replayed, replayed_at, age = cursor.fetchone()
    except DatabaseError as exc:
        replica.close()
        return ReplicaStatus(DOWN, problem=f"it does not answer: {_one_line(exc)}")
    if not standby or replayed is None:
        return ReplicaStatus(DOWN, problem="it is not in recovery: not a standby of the primary")
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        current = positions.lsn_number(cursor.fetchone()[0])
    lag_bytes = max(0, current - positions.lsn_number(replayed))
    lag_seconds = 0.0 if lag_bytes == 0 else age
    limit = settings.REPLICA_MAX_LAG_SECONDS
    if lag_bytes and (lag_seconds is None or lag_seconds > limit):
        behind = "no commit replayed yet" if lag_seconds is None else f"{lag_seconds:.0f} s"
        return ReplicaStatus(
            LAGGING,
            lag_bytes,
            lag_seconds,
            replayed_at,
            problem=f"it is behind by {behind} (more than REPLICA_MAX_LAG_SECONDS = {limit:g})",
        )
    return ReplicaStatus(OK, lag_bytes, lag_seconds, replayed_at)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
