"""A physical streaming standby of the embedded PostgreSQL, for development and tests.

``manage.py db replica start|stop|status|reset|url`` drives it. The standby's data lives in
``$WITCHCRAFT_DATA_DIR/replica/pgdata``; it is taken from the embedded primary with the bundled
``pg_basebackup -R -X stream`` through the replication slot ``witchcraft_replica`` and listens on
a Unix socket only, named for port 5433 (``.s.PGSQL.5433``), so its socket never collides with the
primary's even in one folder.

The primary's helpers (``embedded_db``) do the work with a ``pgdata`` parameter: the same rules
hold here. The standby is never stopped implicitly, a pidfile proves nothing until a connection
succeeds, and a postmaster found running on the folder never gets its pidfile or socket removed.

A standby folder that can no longer follow the primary (the primary was re-initialised, or its
slot is gone or has lost WAL the standby still needs) is refused at start: ``reset`` deletes the
folder and drops the slot, and the next start takes a fresh base backup.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg

from witchcraft.platform import embedded_db
from witchcraft.platform.embedded_db import ServerInfo

PORT = 5433  # only the socket's name: the standby listens on no TCP port
SLOT_NAME = "witchcraft_replica"
NAME = "the embedded standby"
BASEBACKUP_TIMEOUT_S = 600
RESET_HINT = "run `manage.py db replica reset` to take a fresh copy of the primary"


class ReplicaError(embedded_db.EmbeddedServerError):
    """The embedded standby could not be started, reached or stopped, or cannot follow."""


@dataclass(frozen=True)
class ReplicaStatus:
    """What ``status()`` found. Lags are None when they cannot be measured (the standby or the
    primary is down, or nothing was replayed yet)."""

    running: bool
    pid: int | None = None
    socket_dir: Path | None = None
    port: int = PORT
    in_recovery: bool | None = None
    receive_lsn: str | None = None
    replay_lsn: str | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    wal_receiver_status: str | None = None


def replica_dir() -> Path:
    """The folder of the standby's lock and data: ``<data_dir()>/replica``."""
    return embedded_db.data_dir() / "replica"


def pgdata_dir() -> Path:
    return replica_dir() / "pgdata"


def _lock():
    return embedded_db._lock(replica_dir() / "replica.lock")


def running() -> ServerInfo | None:
    """The standby's info when it is up and answers a real connection, else None."""
    info = embedded_db.read_pidfile(pgdata_dir())
    return info if info is not None and embedded_db._connects(info) else None


def url(dbname: str = embedded_db.DATABASE_NAME) -> str:
    """A libpq URL for ``dbname`` on the standby (``host=<socket dir>&port=5433``).

    Nothing is started: the socket folder is the running standby's, or the one it will use."""
    info = running()
    if info is None:
        folder = pgdata_dir()
        if not folder.is_dir():
            raise ReplicaError("there is no embedded standby yet: run `manage.py db replica start`")
        info = ServerInfo(pid=0, socket_dir=embedded_db.socket_dir_for(folder, PORT), port=PORT)
    return info.url(dbname)


def _primary_conn(primary: ServerInfo) -> psycopg.Connection:
    return psycopg.connect(
        host=str(primary.socket_dir),
        port=primary.port,
        user=embedded_db.SUPERUSER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )


def _slot(primary: ServerInfo) -> tuple[bool, str | None] | None:
    """(active, wal_status) of the standby's slot on the primary, or None when it is missing."""
    with _primary_conn(primary) as conn:
        row = conn.execute(
            "SELECT active, wal_status FROM pg_replication_slots WHERE slot_name = %s",
            [SLOT_NAME],
        ).fetchone()
    return None if row is None else (bool(row[0]), row[1])


def _drop_slot(primary: ServerInfo) -> bool:
    """Drop the standby's slot on the primary when it exists and no standby uses it; return
    whether it was dropped. An active slot is refused: a standby still streams through it."""
    slot = _slot(primary)
    if slot is None:
        return False
    if slot[0]:
        raise ReplicaError(
            f"the replication slot {SLOT_NAME} on the embedded PostgreSQL is in use by a running "
            "standby; stop it first (`manage.py db replica stop`)"
        )
    with _primary_conn(primary) as conn:
        conn.execute("SELECT pg_drop_replication_slot(%s)", [SLOT_NAME])
    return True


def system_identifier(pgdata: Path) -> str:
    """The cluster's "Database system identifier" (``pg_controldata``): a base backup keeps
    it, a new ``initdb`` makes a new one."""
    out = embedded_db._run("pg_controldata", "-D", str(pgdata), cwd=pgdata)
    for line in out.splitlines():
        label, _, value = line.partition(":")
        if label.strip() == "Database system identifier":
            return value.strip()
    raise ReplicaError(f"pg_controldata printed no system identifier for {pgdata}")


def _check_can_follow(folder: Path, primary: ServerInfo) -> None:
    """Refuse a standby folder that can no longer follow the primary."""
    if not (folder / "standby.signal").exists():
        # An interrupted base backup: started as is it would run as a second primary.
        raise ReplicaError(f"{folder} holds no complete standby (no standby.signal); {RESET_HINT}")
    ours = system_identifier(folder)
    theirs = system_identifier(embedded_db.pgdata_dir())
    if ours != theirs:
        raise ReplicaError(
            f"the embedded PostgreSQL was re-initialised since the standby was taken (system "
            f"identifier {theirs}, the standby's {ours}): it cannot follow; {RESET_HINT}"
        )
    slot = _slot(primary)
    if slot is None:
        raise ReplicaError(
            f"the replication slot {SLOT_NAME} is missing on the embedded PostgreSQL: the "
            f"standby cannot be sure to find the WAL it needs; {RESET_HINT}"
        )
    if slot[1] == "lost":
        raise ReplicaError(
            f"the replication slot {SLOT_NAME} has lost WAL the standby needs (wal_status "
            f"'lost'); {RESET_HINT}"
        )


def _base_backup(folder: Path, primary: ServerInfo) -> None:
    """Take the standby's copy of the primary into ``folder``, with a new slot. Caller holds
    the lock; ``folder`` holds no standby (no PG_VERSION)."""
    if folder.exists():  # what an interrupted pg_basebackup left: nothing runs on it
        if (live := embedded_db._postmaster_of(folder)) is not None:
            raise ReplicaError(f"a postmaster (pid {live}) runs on {folder}, which has no data")
        shutil.rmtree(folder)
    # The slot of a deleted standby would keep WAL forever and makes -C fail.
    _drop_slot(primary)
    folder.mkdir(parents=True, mode=0o700)
    folder.chmod(0o700)  # the server refuses a data folder others can read
    embedded_db._prepare_permissions(folder)
    embedded_db._run(
        "pg_basebackup",
        "-D",
        str(folder),
        "-R",
        "--checkpoint=fast",  # a spread checkpoint makes the copy wait minutes on an idle server
        "-X",
        "stream",
        "-C",
        "-S",
        SLOT_NAME,
        "-h",
        str(primary.socket_dir),
        "-p",
        str(primary.port),
        "-U",
        embedded_db.SUPERUSER,
        timeout=BASEBACKUP_TIMEOUT_S,
        cwd=folder,
    )
    (folder / "log").unlink(missing_ok=True)  # the primary's log, copied with its folder


def server_options(socket_dir: Path, primary: ServerInfo) -> str:
    """The standby's ``pg_ctl -o``: the primary's options (no TCP, the socket in
    ``socket_dir``), port 5433, and the primary's socket as it is now (the one ``-R`` wrote
    may have moved, e.g. with ``XDG_RUNTIME_DIR``)."""
    conninfo = (
        f"host={primary.socket_dir} port={primary.port} user={embedded_db.SUPERUSER} "
        f"application_name={SLOT_NAME}"
    )
    return (
        f"{embedded_db.server_options(socket_dir)} -p {PORT} "
        f"-c {shlex.quote('primary_conninfo=' + conninfo)} -c primary_slot_name={SLOT_NAME}"
    )


def start() -> ServerInfo:
    """Attach to the standby, taking it from the primary (started when needed) and starting it
    when needed. Refuses a standby folder that cannot follow the primary (``ReplicaError``)."""
    info = running()
    if info is not None:
        return info
    primary = embedded_db.ensure_running()
    with _lock():
        folder = pgdata_dir()
        fresh = not (folder / "PG_VERSION").exists()
        if fresh:
            _base_backup(folder, primary)
        alive = embedded_db._clear_stale_pidfile(folder, NAME)
        if alive is not None:
            return alive
        if not fresh:
            _check_can_follow(folder, primary)
        embedded_db._prepare_permissions(folder)
        socket_dir = embedded_db.socket_dir_for(folder, PORT)
        return embedded_db._pg_ctl_start(folder, server_options(socket_dir, primary), NAME)


def stop() -> bool:
    """Stop the standby (fast shutdown). Return False when it was not running."""
    with _lock():
        return embedded_db._pg_ctl_stop(pgdata_dir())


def reset() -> bool:
    """Stop the standby, delete its folder and drop its slot on the primary (started when
    needed: a slot left behind keeps WAL forever). Return whether a standby folder existed."""
    with _lock():
        folder = pgdata_dir()
        embedded_db._pg_ctl_stop(folder)
        if (live := embedded_db._postmaster_of(folder)) is not None:
            raise ReplicaError(f"{NAME} (pid {live}) is still running on {folder}: not deleted")
        existed = folder.exists()
        if existed:
            shutil.rmtree(folder)
        _drop_slot(embedded_db.ensure_running())
    return existed


def status() -> ReplicaStatus:
    """The standby's state and lag behind the primary; starts nothing."""
    info = running()
    if info is None:
        return ReplicaStatus(running=False)
    with psycopg.connect(
        host=str(info.socket_dir),
        port=info.port,
        user=embedded_db.SUPERUSER,
        dbname="postgres",
        connect_timeout=5,
    ) as conn:
        in_recovery, receive_lsn, replay_lsn, receiver, since_replay = conn.execute(
            "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text,"
            " pg_last_wal_replay_lsn()::text, (SELECT status FROM pg_stat_wal_receiver),"
            " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
        ).fetchone()
    lag_bytes = None
    primary = embedded_db.running()
    if primary is not None and replay_lsn is not None:
        with _primary_conn(primary) as conn:
            (diff,) = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", [replay_lsn]
            ).fetchone()
        lag_bytes = max(0, int(diff))
    if replay_lsn is not None and replay_lsn == receive_lsn and receiver == "streaming":
        lag_seconds = 0.0
    else:
        lag_seconds = since_replay
    return ReplicaStatus(
        running=True,
        pid=info.pid,
        socket_dir=info.socket_dir,
        port=info.port,
        in_recovery=in_recovery,
        receive_lsn=receive_lsn,
        replay_lsn=replay_lsn,
        lag_bytes=lag_bytes,
        lag_seconds=lag_seconds,
        wal_receiver_status=receiver,
    )
