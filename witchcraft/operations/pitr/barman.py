"""Barman, driven by the project: its configuration, written from the settings before every
call, and the commands the jobs and ``manage.py`` run.

The configuration (``<WITCHCRAFT_DATA_DIR>/barman/barman.conf``, with Barman's log beside it)
holds one server, ``witchcraft``: the configured database's server, reached the way Django
reaches it (the embedded server's socket, or DATABASE_URL's host). Base backups are taken with
``pg_basebackup`` and WAL is streamed with ``pg_receivewal`` through a replication slot, both
programs of the server's own major version; Barman keeps them in ``PITR_DIR``. Retention is
Barman's "recovery window of PITR_RETENTION_DAYS days" with a floor of PITR_MIN_BACKUPS base
backups (``minimum_redundancy``). No password is ever written: it reaches Barman (and the
programs it runs) in ``PGPASSWORD``.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from psycopg.conninfo import make_conninfo

from witchcraft.operations.backups.clients import client_version, search_dirs
from witchcraft.operations.backups.errors import BackupError
from witchcraft.operations.backups.servers import Server, configured_server, server_major
from witchcraft.operations.pitr.errors import PitrError
from witchcraft.platform import embedded_db

SERVER_NAME = "witchcraft"
SLOT_NAME = "witchcraft_barman"
SLOT_WAL_KEEP = "16GB"
BARMAN = Path(sys.executable).with_name("barman")
# The programs Barman runs and the restore starts, all of the server's major version.
PROGRAMS = ("pg_basebackup", "pg_receivewal", "pg_ctl", "postgres")


def config_dir() -> Path:
    return embedded_db.data_dir() / "barman"


def config_path() -> Path:
    return config_dir() / "barman.conf"


def home() -> Path:
    """Where Barman keeps the base backups and the WAL (``PITR_DIR``)."""
    return Path(settings.PITR_DIR).expanduser().resolve()


def server_dir() -> Path:
    return home() / SERVER_NAME


def programs_dir(server: Server, major: int) -> Path:
    """The folder with pg_basebackup, pg_receivewal, pg_ctl and postgres of ``major``.

    The embedded server's own; otherwise the first of ``$PG_BIN_DIR``,
    ``/usr/lib/postgresql/<major>/bin`` and the PATH that holds all four of that major.
    """
    if server.embedded:
        return embedded_db.bin_dir()
    for folder in search_dirs(major):
        if all((folder / program).is_file() for program in PROGRAMS):
            found = client_version(folder / "pg_basebackup")
            if found is not None and found[1] == major:
                return folder
    raise PitrError(
        f"no folder with {', '.join(PROGRAMS)} of PostgreSQL {major} was found: install the "
        f"server packages of PostgreSQL {major} (postgresql-{major}) or set PG_BIN_DIR"
    )


@dataclass(frozen=True)
class Setup:
    """What a Barman call needs: the configuration written, the programs' folder, and the
    server (None when it could not be reached: a restore can still go on from the archive)."""

    config: Path
    bin_dir: Path
    database: str
    server: Server | None

    @property
    def online(self) -> bool:
        return self.server is not None

    def env(self) -> dict[str, str]:
        return self.server.child_env() if self.server is not None else dict(os.environ)


def _conninfo(server: Server, *, replication: bool = False) -> str:
    params = {k: str(v) for k, v in server.params.items() if k != "options"}
    if replication:
        return make_conninfo(**params, application_name="barman_streaming_backup")
    return make_conninfo(dbname=server.database, **params)


def config_text(server: Server, bin_dir: Path) -> str:
    """Barman's configuration for ``server`` (no password: that goes in the environment)."""
    log = config_dir() / "barman.log"
    lines = [
        "# Written by Witchcraft (witchcraft/operations/pitr/barman.py) before every Barman call:",
        "# edit the settings (PITR_*), not this file.",
        "[barman]",
        f"barman_user = {getpass.getuser()}",
        f"barman_home = {home()}",
        f"log_file = {log}",
        "log_level = INFO",
        "",
        f"[{SERVER_NAME}]",
        "description = the Witchcraft database"
        + (" (embedded PostgreSQL)" if server.embedded else " (DATABASE_URL)"),
        f"conninfo = {_conninfo(server)}",
        f"streaming_conninfo = {_conninfo(server, replication=True)}",
        "backup_method = postgres",
        "streaming_archiver = on",
        "archiver = off",
        f"slot_name = {SLOT_NAME}",
        "create_slot = auto",
        f"path_prefix = {bin_dir}",
        # A base backup starts at once instead of waiting for the next spread checkpoint.
        "immediate_checkpoint = true",
        f"retention_policy = RECOVERY WINDOW OF {settings.PITR_RETENTION_DAYS} DAYS",
        f"minimum_redundancy = {settings.PITR_MIN_BACKUPS}",
        "wal_retention_policy = main",
        "",
    ]
    return "\n".join(line.replace("%", "%%") for line in lines)


def prepare(*, offline_ok: bool = False) -> Setup:
    """Write the configuration for the configured server now; return the call's set-up.

    Raises PitrError when point-in-time recovery is off or the server cannot be reached, except
    with ``offline_ok`` (a restore) when a configuration was written before: then the archive
    is used as that configuration describes it.
    """
    if not settings.PITR_ENABLED:
        raise PitrError("point-in-time recovery is off (PITR_ENABLED=false): see README, Backups")
    try:
        server = configured_server()
        with server.connect(autocommit=True) as conn:
            major, _version = server_major(conn)
            wal_level = conn.execute("SHOW wal_level").fetchone()[0]
            if server.embedded:
                _cap_slot_wal(conn)
    except BackupError as exc:
        if offline_ok and config_path().exists():
            return _offline_setup()
        raise PitrError(str(exc)) from None
    if wal_level not in ("replica", "logical"):
        raise PitrError(
            f"the server's wal_level is {wal_level}: continuous archiving needs 'replica' "
            "(set wal_level = replica and restart the server)"
        )
    bin_dir = programs_dir(server, major)
    config_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    home().mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config_path()
    text = config_text(server, bin_dir)
    if not path.exists() or path.read_text() != text:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.chmod(0o600)
        temporary.replace(path)
    return Setup(config=path, bin_dir=bin_dir, database=server.database, server=server)


def _cap_slot_wal(conn) -> None:
    """The embedded server: let the slot hold back at most SLOT_WAL_KEEP of WAL while the
    receiver is away (the worker stopped), rather than fill the disk; past it the slot is lost
    and the next WAL check starts a new one (witchcraft.operations.pitr.jobs). Set once, as a
    server setting an operator may change (ALTER SYSTEM)."""
    (value,) = conn.execute("SHOW max_slot_wal_keep_size").fetchone()
    if value == "-1":
        conn.execute(f"ALTER SYSTEM SET max_slot_wal_keep_size = '{SLOT_WAL_KEEP}'")
        conn.execute("SELECT pg_reload_conf()")


def _offline_setup() -> Setup:
    """The set-up of the configuration last written, for a server that cannot be reached."""
    found = re.search(r"^path_prefix = (.+)$", config_path().read_text(), re.MULTILINE)
    if found is None:
        raise PitrError(f"{config_path()} names no programs folder (path_prefix)")
    database = settings.DATABASES["default"].get("NAME") or embedded_db.DATABASE_NAME
    return Setup(config=config_path(), bin_dir=Path(found[1]), database=database, server=None)


def run(
    setup: Setup, *args: str, json_output: bool = False, timeout: float = 3600
) -> subprocess.CompletedProcess:
    """Run ``barman -c CONFIG ARGS``; raise PitrError with its message when it fails."""
    command = [str(BARMAN), "-c", str(setup.config)]
    if json_output:
        command += ["-f", "json"]
    try:
        done = subprocess.run(  # noqa: S603 - Barman, with our own arguments
            [*command, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=setup.env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PitrError(f"barman {args[0]} did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise PitrError(f"barman could not be run ({BARMAN}): {exc}") from None
    if done.returncode != 0:
        raise PitrError(f"barman {args[0]} failed: {message_of(done)}")
    return done


def message_of(done: subprocess.CompletedProcess) -> str:
    """Barman's error lines, joined into one (for a one-line maintenance run error)."""
    text = (done.stderr or "") + "\n" + (done.stdout or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR", "EXCEPTION", "FAILED"))]
    return "; ".join(errors or lines[-2:] or ["no message"])[:400]


def run_json(setup: Setup, *args: str, timeout: float = 600) -> Any:
    done = run(setup, *args, json_output=True, timeout=timeout)
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise PitrError(f"barman {args[0]} printed no JSON: {done.stdout[:200]!r}") from None
    return data.get(SERVER_NAME, data)


@dataclass(frozen=True)
class BaseBackup:
    """One base backup in Barman's catalogue."""

    backup_id: str
    status: str
    begin_time: datetime
    end_time: datetime
    size_bytes: int

    @property
    def done(self) -> bool:
        return self.status == "DONE"

    def data_dir(self) -> Path:
        return server_dir() / "base" / self.backup_id / "data"


def _timestamp(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def read_backup_info(path: Path) -> dict[str, str]:
    """One ``backup.info`` of Barman's catalogue: its ``key=value`` lines."""
    info = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            info[key] = value
    return info


def base_backups() -> list[BaseBackup]:
    """The base backups in Barman's catalogue (``<PITR_DIR>/witchcraft/meta``), oldest first;
    one still being taken (no end time yet) is left out: nothing is restorable from it."""
    backups = []
    for path in (server_dir() / "meta").glob("*-backup.info"):
        info = read_backup_info(path)
        if info.get("end_time", "None") == "None" or info.get("begin_time", "None") == "None":
            continue
        backups.append(
            BaseBackup(
                backup_id=path.name.removesuffix("-backup.info"),
                status=info.get("status", ""),
                begin_time=datetime.fromisoformat(info["begin_time"]).astimezone(UTC),
                end_time=datetime.fromisoformat(info["end_time"]).astimezone(UTC),
                size_bytes=int(info.get("size") or 0),
            )
        )
    return sorted(backups, key=lambda b: b.end_time)


@dataclass(frozen=True)
class ArchivedWal:
    """The newest WAL segment Barman has archived (complete: the one being streamed is not)."""

    name: str
    archived_at: datetime


def last_archived_wal() -> ArchivedWal | None:
    """The last line of Barman's WAL catalogue (``wals/<server>-xlog.db``), if any."""
    catalogue = sorted((server_dir() / "wals").glob("*xlog.db"))
    last = None
    for path in catalogue:
        with open(path) as handle:
            for line in handle:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 3 and fields[0]:
                    last = fields
    if last is None:
        return None
    return ArchivedWal(name=last[0], archived_at=_timestamp(last[2]))
