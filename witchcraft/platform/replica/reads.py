"""The read path: which server an analytics read goes to, and the fallback to the primary."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from prometheus_client import Counter
from psycopg import sql

from witchcraft.platform import identity_sql
from witchcraft.platform.replica import positions

logger = logging.getLogger(__name__)

ALIAS = "replica"
PRIMARY = "default"
APP_ROLE = "witchcraft_app"  # witchcraft.platform.rls.APP_ROLE (imported there from here: no cycle)
LOG_EVERY_SECONDS = 60
PRIMARY_POSITION_SECONDS = 1.0  # how long a process reuses the primary's WAL position

# Why a read was served where it was (bounded label values).
SERVED = "served"  # by the replica
DOWN = "down"  # the replica did not answer (or is not a standby any more)
LAGGING = "lagging"  # more than REPLICA_MAX_LAG_SECONDS behind
BEHIND_WRITE = "behind_write"  # it has not replayed the user's own latest write yet
CONFLICT = "conflict"  # it cancelled the query (a recovery conflict)
NO_POSITION = "no_position"  # the user's latest write could not be read from the cache
WRITES = "writes"  # the work tried to write (a routing mistake: logged as an error)
LOGGED = frozenset({DOWN, LAGGING, CONFLICT, NO_POSITION})

READS = Counter(
    "witchcraft_replica_reads",
    "Analytics reads, by the server that answered (replica or primary) and why.",
    ["server", "reason"],
)

_reading: ContextVar[str | None] = ContextVar("witchcraft_read_alias", default=None)


class _Skip(Exception):  # control flow, never raised out of this module
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ReadFrom:
    """Where a page's analytics came from: ``request.read_from`` (pages say "as of")."""

    server: str  # ALIAS or PRIMARY
    as_of: datetime | None = None  # the replica's last replayed commit

    @property
    def replica(self) -> bool:
        return self.server == ALIAS


def configured() -> bool:
    return ALIAS in settings.DATABASES


def read_alias() -> str:
    """The database the current analytics read uses (the primary outside :func:`read`)."""
    return _reading.get() or PRIMARY


def read_connection():
    """The connection selectors run their own SQL on, so that :func:`read` can move it."""
    return connections[read_alias()]


def read_atomic():
    """``transaction.atomic()`` on :func:`read_connection`."""
    return transaction.atomic(using=read_alias())


class AnalyticsRouter:
    """Sends the ORM's reads inside :func:`read` to the replica; nothing else (no blanket
    routing: outside :func:`read` every query goes to the primary, and writes always do)."""

    def db_for_read(self, model, **hints):
        # Outside read(), the primary even for a row read inside it (a template following a
        # relation later): the replica's connection carries an identity only inside read().
        return _reading.get() or PRIMARY

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the primary's rows: one database, two servers

    def allow_migrate(self, db, app_label, **hints):
        return None if db == PRIMARY else False


# --- the replica's health, as this process last saw it -----------------------------------------


class _Health:
    """When this process may try the replica again, and when it last logged each reason."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.skip_until = 0.0
        self.skip_reason = ""
        self.logged: dict[str, float] = {}
        self.primary_position = (0.0, 0)  # (when read, position)

    def skipping(self) -> str:
        with self.lock:
            return self.skip_reason if time.monotonic() < self.skip_until else ""

    def skip(self, reason: str) -> None:
        with self.lock:
            self.skip_until = time.monotonic() + settings.REPLICA_RETRY_SECONDS
            self.skip_reason = reason

    def should_log(self, reason: str) -> bool:
        now = time.monotonic()
        with self.lock:
            if now - self.logged.get(reason, -LOG_EVERY_SECONDS) < LOG_EVERY_SECONDS:
                return False
            self.logged[reason] = now
            return True


_health = _Health()


def _primary_position() -> int:
    """The primary's WAL position, read at most once a second per process."""
    read_at, position = _health.primary_position
    if time.monotonic() - read_at < PRIMARY_POSITION_SECONDS:
        return position
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        position = positions.lsn_number(cursor.fetchone()[0])
    _health.primary_position = (time.monotonic(), position)
    return position


def _fallback(request, reason: str, detail: str = "") -> None:
    READS.labels("primary", reason).inc()
    request.read_from = ReadFrom(PRIMARY)
    if reason == WRITES:
        logger.error("an analytics read tried to write on the replica: %s", detail)
    elif reason in LOGGED and _health.should_log(reason):
        logger.warning(
            "analytics read from the primary: the replica is %s%s (logged once a minute)",
            reason.replace("_", " "),
            f" ({detail})" if detail else "",
        )


def _enter(identity: dict[str, str]) -> tuple[int | None, datetime | None, float | None]:
    """In the replica's transaction: take the request's identity (as the primary's request
    transaction has it) and read how far the replica has replayed. Returns the replayed
    position (None: not a standby), the time of the last replayed commit and the seconds
    since it."""
    statements = sql.SQL("; ").join(
        [
            sql.SQL(
                "SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp(),"
                " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
            ),
            identity_sql.set_local(APP_ROLE, identity),
        ]
    )
    with connections[ALIAS].cursor() as cursor:
        identity_sql.execute(cursor, statements)  # the first statement's row is the result
        replayed, replayed_at, age = cursor.fetchone()
    return (None if replayed is None else positions.lsn_number(replayed)), replayed_at, age


def _check(replayed: int | None, age: float | None, *, needed: int) -> None:
    """Raise _Skip when the replica must not serve this read."""
    if replayed is None:
        _health.skip(DOWN)
        raise _Skip(DOWN, "it is not in recovery: not a standby of the primary")
    # Behind the primary at all: then the time since its last replayed commit is its lag.
    if replayed < _primary_position() and (age is None or age > settings.REPLICA_MAX_LAG_SECONDS):
        _health.skip(LAGGING)
        raise _Skip(LAGGING, "no commit replayed yet" if age is None else f"{age:.0f} s behind")
    if needed and replayed < needed:
        raise _Skip(BEHIND_WRITE)


def _failure(exc: DatabaseError) -> str | None:
    """Why a replica query failed, when it is the replica's fault (else None: a real error)."""
    state = getattr(exc.__cause__, "sqlstate", None) or ""
    if state in ("40001", "40P01") or state.startswith("57P"):
        return CONFLICT  # canceled on conflict with recovery, or the server going away
    if state == "25006":
        return WRITES  # read_only_sql_transaction
    if not state or state.startswith("08"):
        return DOWN
    return None


def _tagging(execute, sql, params, many, context):
    """Mark an error of a replica query as the replica's (the primary's errors pass as they are)."""
    try:
        return execute(sql, params, many, context)
    except DatabaseError as exc:
        exc.witchcraft_replica = True
        raise


def read[T](request, work: Callable[[], T]) -> T:
    """Run ``work`` (analytics reads that return plain data, evaluated inside) on the replica
    when it may serve this request, else on the primary. Sets ``request.read_from``."""
    if not configured():
        return work()
    user = getattr(request, "user", None)
    user_id = user.pk if user is not None and user.is_authenticated else None
    identity = getattr(request, "rls_identity", None)
    if identity is None:  # no identity to carry: only the primary can apply the policies
        return work()
    if reason := _health.skipping():
        _fallback(request, reason)
        return work()
    try:
        needed = positions.written(user_id) if user_id else 0
    except Exception as exc:  # any cache failure: the primary is always right
        _fallback(request, NO_POSITION, type(exc).__name__)
        return work()
    replica = connections[ALIAS]
    try:
        with transaction.atomic(using=ALIAS), replica.execute_wrapper(_tagging):
            replayed, replayed_at, age = _enter(identity.values())
            _check(replayed, age, needed=needed)
            token = _reading.set(ALIAS)
            try:
                result = work()
            finally:
                _reading.reset(token)
    except _Skip as skip:
        _fallback(request, skip.reason, skip.detail)
        return work()
    except DatabaseError as exc:
        reason = _failure(exc)
        if reason is None or not _from_replica(exc, replica):
            raise
        if reason == DOWN:
            _health.skip(DOWN)
        replica.close()
        _fallback(request, reason, str(exc).strip().splitlines()[0] if str(exc) else "")
        return work()
    READS.labels("replica", SERVED).inc()
    request.read_from = ReadFrom(ALIAS, replayed_at)
    return result


def _from_replica(exc: DatabaseError, replica) -> bool:
    """An error raised by the replica's connection: tagged by its execute wrapper, or raised
    while connecting or ending its transaction (no query of the primary runs there)."""
    if getattr(exc, "witchcraft_replica", False):
        return True
    return replica.connection is None or not replica.is_usable()


# --- read-your-writes --------------------------------------------------------------------------


def wrote_in_transaction(user_id: int | None) -> bool:
    """In the request's transaction on the primary, just before it commits: did it write?
    (No query without a replica or a user.)"""
    if not configured() or user_id is None:
        return False
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
        return bool(cursor.fetchone()[0])


def remember_write(user_id: int) -> None:
    """After the request's transaction committed: keep where the primary's WAL ends now for
    the user, whose pages read the replica again once it has replayed that far."""
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        position = positions.lsn_number(cursor.fetchone()[0])
    try:
        positions.remember(user_id, position)
    except Exception:  # the write stands; the user may read the replica before it catches up
        logger.exception("could not keep user %s's latest write position", user_id)
