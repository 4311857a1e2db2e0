"""Real processes for tests that need them: a free port, a clean environment for a subprocess,
waiting for a server to answer, and a PostgreSQL of a test's own (one that a test may kill
without taking the suite's database with it): the embedded one, or one from the machine's Debian
PostgreSQL programs for what the embedded build lacks (pg_stat_statements)."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests

from witchcraft.platform import embedded_db

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
# Variables of the developer's shell (or .env) that would change what a served process does.
SERVING_VARIABLES = (
    "DATABASE_POOL",
    "DATABASE_POOL_SIZE",
    "DATABASE_POOL_MIN_SIZE",
    "DATABASE_POOL_TIMEOUT",
    "DATABASE_MAX_CONNECTIONS",
    "CONN_MAX_AGE",
    "WEB_CONCURRENCY",
    "WEB_THREADS",
    "PROMETHEUS_MULTIPROC_DIR",
    "METRICS_TOKEN",
    "METRICS_ALLOWED_IPS",
    "SECURE_SSL_REDIRECT",
    "BIND",
    "TRUSTED_PROXIES",
    "FORWARDED_ALLOW_IPS",
)
# Which database a process uses: kept for one that must use the suite's, dropped otherwise.
DATABASE_VARIABLES = ("DATABASE_URL", "PGHOST", "PGPORT", "WITCHCRAFT_DATA_DIR")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(*, keep_database: bool = False, **changes: str) -> dict[str, str]:
    """This process's environment without the serving variables (and, unless
    ``keep_database``, without the database's), plus ``changes``."""
    dropped = SERVING_VARIABLES if keep_database else SERVING_VARIABLES + DATABASE_VARIABLES
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    # A test's worker runs no backup job (the backup tests ask for them) unless told to.
    return env | {
        "DJANGO_SETTINGS_MODULE": "witchcraft.settings",
        "BACKUP_SCHEDULE": "false",
        **changes,
    }


def collect_static() -> dict[str, str]:
    """What `make serve` does before gunicorn starts: collectstatic with DEBUG off (pages name
    the hashed files of its manifest). Returns the manifest's paths."""
    done = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=clean_env(keep_database=True, DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((ROOT / "staticfiles" / "staticfiles.json").read_text())["paths"]


def start(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``command`` in the project's folder, in a session of its own, its output in ``log``."""
    with log.open("w") as output:
        return subprocess.Popen(  # noqa: S603
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_gunicorn(*, env: dict[str, str], log: Path) -> subprocess.Popen:
    return start([str(GUNICORN), "-c", "witchcraft/gunicorn.conf.py"], env=env, log=log)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to its session, then SIGKILL after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until_answers(url: str, process: subprocess.Popen, *, seconds: float = 60) -> bool:
    """True once ``url`` answers at all; False when ``process`` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            requests.get(url, timeout=10)
            return True
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    return False


class _OwnServer:
    """What a server of a test's own offers, however it was started: where it listens (read
    from its ``postmaster.pid``), its programs, and ``manage.py`` run against it."""

    data: Path  # the server's folder; the cluster is ``data / "pgdata"``
    env: dict[str, str]  # a process's environment that reaches this server

    def bin_dir(self) -> Path:
        raise NotImplementedError

    def manage(
        self, *args: str, env: dict | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def info(self) -> embedded_db.ServerInfo:
        pidfile = (self.data / "pgdata" / "postmaster.pid").read_text().splitlines()
        return embedded_db.ServerInfo(
            pid=int(pidfile[0]), socket_dir=Path(pidfile[4]), port=int(pidfile[3])
        )

    def tool(self, name: str) -> str:
        return str(self.bin_dir() / name)


class OwnPostgres(_OwnServer):
    """An embedded PostgreSQL in ``data`` (its own ``WITCHCRAFT_DATA_DIR``), run through
    ``manage.py db`` as an operator would."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.env = clean_env(WITCHCRAFT_DATA_DIR=str(data))

    def bin_dir(self) -> Path:
        return embedded_db.bin_dir()

    def start(self) -> embedded_db.ServerInfo:
        done = self.manage("db", "start")
        assert done.returncode == 0, done.stdout + done.stderr
        return self.info()

    def stop(self) -> None:
        done = self.manage("db", "stop")
        assert done.returncode == 0, done.stdout + done.stderr


# What a dump of the machine's server may hold that the embedded server's build cannot restore.
CONTRIB_ONLY = ("pg_stat_statements", "pg_trgm", "users_email_trgm", "users_full_name_trgm")


def _checked(*args: str, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(  # noqa: S603 - the servers' own programs
        args, capture_output=True, text=True, timeout=120, check=False, **kwargs
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def copy_test_database(pg: OwnPostgres, connection) -> None:
    """Copy the suite's test database (``connection``'s: schema, catalog, grants) into ``pg``'s
    ``witchcraft`` database, with a dump of the source server's own version."""
    from witchcraft.operations.backups.clients import choose_client

    info = pg.info()
    source = connection.get_connection_params()
    pg_dump = choose_client(
        "pg_dump",
        server_major=connection.pg_version // 10000,
        embedded=bool(connection.settings_dict.get("EMBEDDED")),
    )
    target = ["-h", str(info.socket_dir), "-p", str(info.port), "-U", "postgres"]
    _checked(pg.tool("psql"), *target, "-d", "postgres", "-c", "CREATE ROLE witchcraft_app LOGIN")
    _checked(
        str(pg_dump.path),
        "-Fc",
        "-h",
        str(source.get("host") or "127.0.0.1"),
        "-p",
        str(source.get("port") or 5432),
        "-U",
        source.get("user") or "postgres",
        "-f",
        str(pg.data / "copy.dump"),
        source["dbname"],
        env={**os.environ, "PGPASSWORD": source.get("password") or ""},
    )
    # Everything but the contrib extensions the machine's server may have and the embedded
    # one's build lacks: pg_stat_statements (monitoring reads it only where it exists) and
    # pg_trgm with the user search's indexes (the migration makes them only where it exists).
    contents = _checked(pg.tool("pg_restore"), "-l", str(pg.data / "copy.dump")).stdout
    (pg.data / "copy.list").write_text(
        "".join(
            line
            for line in contents.splitlines(keepends=True)
            if not any(name in line for name in CONTRIB_ONLY)
        )
    )
    _checked(
        pg.tool("pg_restore"),
        *target,
        "-d",
        "witchcraft",
        "--exit-on-error",
        "-L",
        str(pg.data / "copy.list"),
        str(pg.data / "copy.dump"),
    )


DEBIAN_POSTGRES = Path("/usr/lib/postgresql")
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
INSTALL_SERVER = (
    "install Debian's PostgreSQL server: apt-get install --no-install-recommends postgresql"
)


def _module_dir(bin_dir: Path) -> Path:
    """The loadable modules of the server in ``bin_dir`` (its ``pg_config --pkglibdir``;
    Debian's layout, ``../lib``, when it has no pg_config)."""
    pg_config = bin_dir / "pg_config"
    if pg_config.is_file():
        done = subprocess.run(  # noqa: S603 - a PostgreSQL program with a fixed argument
            [str(pg_config), "--pkglibdir"], capture_output=True, text=True, timeout=15, check=False
        )
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    return bin_dir.parent / "lib"


def debian_server_bin(*, module: str | None = None) -> Path:
    """The folder of the machine's PostgreSQL server programs: ``pg_config --bindir`` first,
    then Debian's ``/usr/lib/postgresql/<major>/bin``, newest first; the first that holds
    initdb, pg_ctl and postgres and, when ``module`` is named, that loadable module (e.g.
    ``pg_stat_statements``, which Debian's server package ships). Raises LookupError saying
    where it looked and what to install."""
    folders: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run(  # noqa: S603 - the PATH's pg_config with a fixed argument
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=15, check=False
        )
        if done.returncode == 0 and done.stdout.strip():
            folders.append(Path(done.stdout.strip()))
    if DEBIAN_POSTGRES.is_dir():
        majors = sorted(int(p.name) for p in DEBIAN_POSTGRES.iterdir() if p.name.isdigit())
        folders.extend(DEBIAN_POSTGRES / str(major) / "bin" for major in reversed(majors))
    for folder in folders:
        if not all((folder / program).is_file() for program in SERVER_PROGRAMS):
            continue
        if module is None or (_module_dir(folder) / f"{module}.so").is_file():
            return folder
    wanted = "PostgreSQL server programs (" + ", ".join(SERVER_PROGRAMS) + ")"
    if module:
        wanted += f" with the {module} module"
    looked = ", ".join(str(folder) for folder in folders) or f"no pg_config, no {DEBIAN_POSTGRES}"
    raise LookupError(f"no {wanted} found (looked in: {looked}): {INSTALL_SERVER}")


class DebianPostgres(_OwnServer):
    """A PostgreSQL of a test's own from the machine's server programs in ``bin_dir``
    (:func:`debian_server_bin`): a new cluster in ``data`` (trust, superuser ``postgres``),
    reached only through a Unix socket in ``data``, started with the ``settings`` given
    (``postgres -c name=value``) and a ``witchcraft`` database, which ``env`` names.

    PostgreSQL refuses to run as root: as root the server runs as Debian's ``postgres`` user,
    which gets ``data`` (so ``data`` must not be under pytest's private folder)."""

    # Only the socket's name: there is no TCP listener, and the socket folder is this server's.
    PORT = 5432

    def __init__(self, data: Path, *, bin_dir: Path, settings: dict[str, str] | None = None):
        self.data = data
        self._bin_dir = bin_dir
        self.settings = dict(settings or {})
        self.env = clean_env(
            DATABASE_URL=f"postgres://postgres@/{embedded_db.DATABASE_NAME}",
            PGHOST=str(data),
            PGPORT=str(self.PORT),
        )

    def bin_dir(self) -> Path:
        return self._bin_dir

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(  # noqa: S603 - a server program with our own arguments
            [self.tool(program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            user=self._system_user(),
            cwd=self.data,
            check=False,
        )
        if done.returncode != 0:
            log = self.data / "log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}\n{tail}")

    @staticmethod
    def _system_user() -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise LookupError(
                "as root the server runs as the postgres user, which is missing: " + INSTALL_SERVER
            ) from None
        return "postgres"

    def start(self) -> embedded_db.ServerInfo:
        pgdata = self.data / "pgdata"
        user = self._system_user()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        if not (pgdata / "PG_VERSION").exists():
            # --no-sync: a throwaway cluster need not survive a crash of the machine.
            self._run(
                "initdb",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "-U",
                embedded_db.SUPERUSER,
                "-D",
                str(pgdata),
            )
        options = ["-h", "", "-k", str(self.data), "-p", str(self.PORT)]
        for name, value in self.settings.items():
            options += ["-c", f"{name}={value}"]
        self._run(
            "pg_ctl",
            "-w",
            "-t",
            "60",
            "-o",
            shlex.join(options),
            "-l",
            str(self.data / "log"),
            "-D",
            str(pgdata),
            "start",
        )
        info = self.info()
        with psycopg.connect(
            host=str(info.socket_dir),
            port=info.port,
            user=embedded_db.SUPERUSER,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [embedded_db.DATABASE_NAME]
            ).fetchone():
                conn.execute(f'CREATE DATABASE "{embedded_db.DATABASE_NAME}"')
        return info

    def stop(self) -> None:
        if (self.data / "pgdata" / "postmaster.pid").exists():
            self._run("pg_ctl", "-w", "-m", "fast", "-D", str(self.data / "pgdata"), "stop")
