"""Point-in-time restore: a base backup plus WAL, replayed into a NEW data directory and started
on a new port, then verified; the running server is never touched.

``restore_to(target=...)`` picks the newest base backup that ended before the target, checks its
files against its ``backup_manifest``, has Barman copy it and the WAL (``barman recover``,
with the segment still being streamed: ``--partial-wal``), starts the copy with the programs of
the server's major version and waits until it has replayed to the target and left recovery.
Then it reads every table of the database in full (sequential scans, so every page's checksum
is checked on the way) and counts the rows of the seed's critical tables. The restored server
is left running for the operator to inspect and switch over to (:func:`switch_over_steps`);
the weekly drill (witchcraft.operations.pitr.jobs) stops and deletes its copy.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from django.conf import settings
from psycopg import sql

from witchcraft.operations.backups.errors import BackupError
from witchcraft.operations.pitr import barman, manifest
from witchcraft.operations.pitr.errors import PitrError
from witchcraft.platform import embedded_db

# The seed's priority list: the tables a restore must bring back first.
CRITICAL_TABLES = ("users", "user_subscriptions", "payment_history", "ai_usage_monthly")
RECOVERY_TIMEOUT_S = 3600
RECEIVER_WAIT_S = 30
SOCKET_PATH_MAX = 100  # a Unix socket's path is limited to about 107 bytes


@dataclass(frozen=True)
class Restored:
    """A restored, running copy and what was checked of it."""

    backup: barman.BaseBackup
    target: datetime | None  # None: the latest point the WAL reaches
    directory: Path
    socket_dir: Path
    port: int
    bin_dir: Path
    database: str
    manifest_files: int
    replayed_to: datetime | None  # the commit time of the last transaction replayed, if known
    reached_lsn: str  # where replay ended
    tables: int
    rows: int
    critical: dict[str, int]
    receiver_note: str
    seconds: float

    def conninfo(self, dbname: str | None = None) -> str:
        return (
            f"host={self.socket_dir} port={self.port} user={embedded_db.SUPERUSER} "
            f"dbname={dbname or self.database}"
        )

    def stop_command(self) -> str:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.directory), "stop"]
        if os.geteuid() == 0:  # the copy runs as the server's OS user
            command = ["runuser", "-u", embedded_db.SYSTEM_USER, "--", *command]
        return shlex.join(command)


def parse_target(text: str) -> datetime:
    """``--to-time``: an ISO 8601 time with its offset ("2026-12-07 14:04:59+00")."""
    try:
        if not text.isprintable():  # Python takes any character between date and time
            raise ValueError(text)
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PitrError(f"{text!r} is not a time: give one like '2026-12-07 14:04:59+00'") from None
    if when.tzinfo is None:
        raise PitrError(f"{text!r} has no time zone: add one, e.g. '+00' for UTC")
    return when.astimezone(UTC)


def choose_backup(backups: list[barman.BaseBackup], target: datetime | None) -> barman.BaseBackup:
    """The newest finished base backup that ended at or before ``target`` (or the newest)."""
    done = [b for b in backups if b.done]
    if not done:
        raise PitrError("there is no base backup yet: take one with manage.py backup --now")
    if target is None:
        return done[-1]
    before = [b for b in done if b.end_time <= target]
    if not before:
        raise PitrError(
            f"{target:%Y-%m-%d %H:%M:%S%z} is before the oldest restorable time, the end of "
            f"the oldest base backup ({done[0].end_time:%Y-%m-%d %H:%M:%S%z})"
        )
    return before[-1]


def _system_user() -> pwd.struct_passwd | None:
    """The OS user the restored server runs as when we are root (the embedded server's)."""
    if os.geteuid() != 0:
        return None
    return embedded_db._pgserver().ensure_user_exists(embedded_db.SYSTEM_USER)


def _new_directory(directory: Path | None) -> Path:
    if directory is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        directory = embedded_db.data_dir() / "restores" / stamp
    directory = directory.expanduser().resolve()
    if directory == embedded_db.pgdata_dir().resolve() or (directory / "postmaster.pid").exists():
        raise PitrError(f"{directory} is a server's data directory: restore never overwrites one")
    if directory.exists() and any(directory.iterdir()):
        raise PitrError(f"{directory} is not empty: restore into a new folder")
    directory.parent.mkdir(parents=True, exist_ok=True)
    return directory


def wait_for_receiver(setup: barman.Setup, seconds: float = RECEIVER_WAIT_S) -> tuple[str, str]:
    """Wait until the WAL receiver has written everything the server had written when asked.

    Returns a note for the report and that position ("" when it was not all received). A
    source that cannot be reached (the disaster case) is not an error: the restore then reaches
    the last WAL that was received.
    """
    try:
        conn = setup.server.connect(autocommit=True)
    except BackupError:  # the disaster case: the archive is all there is
        note = "the source server could not be reached: restored up to the last WAL received"
        return note, ""
    with conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + seconds
        while True:
            row = conn.execute(
                "SELECT r.write_lsn >= %s::pg_lsn, r.write_lsn FROM pg_stat_replication r"
                " JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = %s",
                [target, barman.SLOT_NAME],
            ).fetchone()
            if row is not None and row[0]:
                return f"every WAL record the server had written ({target}) was received", target
            if time.monotonic() > deadline:
                if row is None:
                    note = "the WAL receiver is not running: restored up to the last WAL received"
                    return note, ""
                return (
                    f"the WAL receiver had written up to {row[1]} of {target} after "
                    f"{seconds:.0f} s: restored up to what it had received"
                ), ""
            time.sleep(0.5)


def _archive_streamed(setup: barman.Setup, seconds: float = 120) -> None:
    """Move the segments streamed so far into the archive, where ``recover`` looks; when the
    worker's WAL check is doing it at this moment, wait until it is done."""
    deadline = time.monotonic() + seconds
    while "already running" in barman.run(setup, "archive-wal", barman.SERVER_NAME).stdout:
        if time.monotonic() > deadline:
            raise PitrError(f"another archive-wal run did not finish within {seconds:.0f} s")
        time.sleep(1)


def _prepare_directory(directory: Path, owner: pwd.struct_passwd | None) -> Path:
    """Give the copy what a server needs to start here; return its socket folder."""
    conf = directory / "postgresql.conf"
    if not conf.exists():  # the source kept its configuration elsewhere (Debian: /etc)
        conf.write_text("# written by manage.py restore: the source's file was outside its data\n")
    hba = directory / "pg_hba.conf"
    if not hba.exists():
        hba.write_text("local all all trust\n")
    (directory / "pg_ident.conf").touch()
    socket_dir = directory
    if len(str(directory)) > SOCKET_PATH_MAX - len("/.s.PGSQL.65535"):
        socket_dir = Path(tempfile.mkdtemp(prefix="wc-restore-"))
    if owner is not None:
        for path in [directory, *directory.rglob("*")]:
            os.lchown(path, owner.pw_uid, owner.pw_gid)
        embedded_db._pgserver().ensure_prefix_permissions(directory)
        os.chown(socket_dir, owner.pw_uid, owner.pw_gid)
    directory.chmod(0o700)
    return socket_dir


def _pg_ctl(bin_dir: Path, owner, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - the server's own pg_ctl, our arguments
        [str(bin_dir / "pg_ctl"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        user=owner.pw_name if owner is not None else None,
        check=False,
    )


def _log_tail(directory: Path) -> str:
    try:
        lines = (directory / "log").read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    fatal = [line for line in lines if "FATAL" in line or "PANIC" in line]
    return (fatal or lines[-3:] or ["empty log"])[-1].strip()


def start_copy(bin_dir: Path, directory: Path, socket_dir: Path, port: int, owner) -> None:
    """Start the restored copy (no TCP, its socket in ``socket_dir``) and wait for recovery."""
    options = f"-p {port} -k {shlex.quote(str(socket_dir))} -h '' -c archive_mode=off"
    done = _pg_ctl(
        bin_dir,
        owner,
        "-w",
        "-t",
        str(RECOVERY_TIMEOUT_S),
        "-D",
        str(directory),
        "-l",
        str(directory / "log"),
        "-o",
        options,
        "start",
        timeout=RECOVERY_TIMEOUT_S + 30,
    )
    if done.returncode != 0:
        reason = _log_tail(directory)
        if "before configured recovery target was reached" in reason:
            raise PitrError(
                "the WAL received ends before the target time: restore to an earlier time, or "
                f"with --to-latest ({reason})"
            )
        raise PitrError(f"the restored server did not start: {reason} (see {directory}/log)")


def stop_copy(bin_dir: Path, directory: Path) -> None:
    owner = _system_user()
    _pg_ctl(bin_dir, owner, "-D", str(directory), "-m", "fast", "-w", "stop", timeout=120)


def _wait_promoted(conninfo: str, directory: Path) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(conninfo, connect_timeout=5, autocommit=True) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return
        except psycopg.OperationalError:
            if not (directory / "postmaster.pid").exists():
                raise PitrError(f"the restored server stopped: {_log_tail(directory)}") from None
        time.sleep(0.5)
    raise PitrError(f"the restored server was still recovering after {RECOVERY_TIMEOUT_S} s")


def read_everything(conn: psycopg.Connection) -> tuple[int, int, dict[str, int], datetime | None]:
    """Read every table of the public and auth schemas in full (sequential scans: each page's
    checksum is verified as it is read); the tables, rows, the critical tables' counts and the
    commit time of the last transaction replayed."""
    conn.execute(
        "SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off"
    )
    tables = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'm') AND n.nspname IN ('public', 'auth', 'archive')"
        " ORDER BY 1, 2"
    ).fetchall()
    rows, critical = 0, {}
    for schema, name in tables:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(name)
        )
        (count,) = conn.execute(query).fetchone()
        rows += count
        if schema == "public" and name in CRITICAL_TABLES:
            critical[name] = count
    replayed = conn.execute("SELECT pg_last_xact_replay_timestamp()").fetchone()[0]
    return len(tables), rows, critical, replayed


def restore_to(
    *,
    target: datetime | None,
    directory: Path | None = None,
    port: int | None = None,
    wait_for_wal: bool = True,
) -> Restored:
    """Restore to ``target`` (None: the latest WAL received) into ``directory`` (default a new
    folder under ``<WITCHCRAFT_DATA_DIR>/restores``) on ``port`` (default a free one), verified
    and left running. Raises PitrError, leaving a failed copy's folder for inspection."""
    started = time.monotonic()
    setup = barman.prepare(offline_ok=True)
    receiver_note, received_lsn = (
        wait_for_receiver(setup)
        if wait_for_wal and setup.online
        else ("the source was not asked", "")
    )
    _archive_streamed(setup)
    backup = choose_backup(barman.base_backups(), target)
    check = manifest.verify(backup.data_dir())
    if not check.ok:
        raise PitrError(
            f"base backup {backup.backup_id} does not match its manifest: {check.problems[0]}"
            + (f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else "")
        )
    directory = _new_directory(directory)
    recover = ["recover", "--partial-wal"]
    if target is not None:
        recover += [
            "--target-time",
            target.isoformat(sep=" "),
            "--target-action",
            "promote",
        ]
    barman.run(setup, *recover, barman.SERVER_NAME, backup.backup_id, str(directory))
    owner = _system_user()
    socket_dir = _prepare_directory(directory, owner)
    port = port or free_port()
    start_copy(setup.bin_dir, directory, socket_dir, port, owner)
    database = setup.database
    conninfo = f"host={socket_dir} port={port} user={embedded_db.SUPERUSER} dbname={database}"
    _wait_promoted(conninfo, directory)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables, rows, critical, replayed = read_everything(conn)
        # Where replay ended: the checkpoint that closed recovery starts there.
        reached = conn.execute("SELECT redo_lsn::text FROM pg_control_checkpoint()").fetchone()[0]
        short = (
            received_lsn
            and conn.execute("SELECT %s::pg_lsn < %s::pg_lsn", [reached, received_lsn]).fetchone()[
                0
            ]
        )
    if target is not None and replayed is not None and replayed > target:
        raise PitrError(
            f"the copy replayed a transaction of {replayed.isoformat()}, after the target"
        )
    if target is None and short:
        raise PitrError(
            f"the copy's WAL ends at {reached}, before {received_lsn} that the server had "
            "written and the receiver had received"
        )
    return Restored(
        backup=backup,
        target=target,
        directory=directory,
        socket_dir=socket_dir,
        port=port,
        bin_dir=setup.bin_dir,
        database=database,
        manifest_files=check.files,
        replayed_to=replayed,
        reached_lsn=reached,
        tables=tables,
        rows=rows,
        critical=critical,
        receiver_note=receiver_note,
        seconds=time.monotonic() - started,
    )


def discard(restored: Restored) -> None:
    """Stop a restored copy and delete its folder (the drill's clean-up)."""
    stop_copy(restored.bin_dir, restored.directory)
    shutil.rmtree(restored.directory, ignore_errors=True)
    if restored.socket_dir != restored.directory:
        shutil.rmtree(restored.socket_dir, ignore_errors=True)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def switch_over_steps(restored: Restored) -> list[str]:
    """What an operator does next to make the restored copy the database."""
    live = (
        f"the embedded server's folder ({embedded_db.pgdata_dir()})"
        if settings.DATABASES["default"].get("EMBEDDED")
        else "the server DATABASE_URL names"
    )
    return [
        "Look at the copy first: psql " + shlex.quote(restored.conninfo()),
        "Stop everything that writes: the web servers and the worker (make stop ends the "
        "embedded server too).",
        f"Stop the copy ({restored.stop_command()}), then put its folder in place of {live}: "
        f"move the old one aside (keep it until you are sure), move {restored.directory} "
        "there, and start the server (make run; for DATABASE_URL, start it as you run that "
        "server and point DATABASE_URL at it).",
        "Take a new base backup at once (manage.py backup --now): the copy's history forks "
        "from the old server's, and restores after this point start from the new backup.",
    ]
