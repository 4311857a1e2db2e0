"""Real processes for tests that need them: a free port, a clean environment for a subprocess,
waiting for a server to answer, and an embedded PostgreSQL of a test's own (one that a test may
kill without taking the suite's database with it)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from witchcraft import embedded_db

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
    return env | {"DJANGO_SETTINGS_MODULE": "witchcraft.settings", **changes}


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


class OwnPostgres:
    """An embedded PostgreSQL in ``data`` (its own ``WITCHCRAFT_DATA_DIR``), run through
    ``manage.py db`` as an operator would."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.env = clean_env(WITCHCRAFT_DATA_DIR=str(data))

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

    def start(self) -> embedded_db.ServerInfo:
        done = self.manage("db", "start")
        assert done.returncode == 0, done.stdout + done.stderr
        return self.info()

    def stop(self) -> None:
        done = self.manage("db", "stop")
        assert done.returncode == 0, done.stdout + done.stderr

    def info(self) -> embedded_db.ServerInfo:
        pidfile = (self.data / "pgdata" / "postmaster.pid").read_text().splitlines()
        return embedded_db.ServerInfo(
            pid=int(pidfile[0]), socket_dir=Path(pidfile[4]), port=int(pidfile[3])
        )

    def tool(self, name: str) -> str:
        return str(embedded_db.bin_dir() / name)
