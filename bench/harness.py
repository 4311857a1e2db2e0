"""The benchmark's own databases, its subprocesses and its measurement helpers.

The benchmark never touches the development data: it creates its own databases
(``witchcraft_bench`` for the 1x data set, ``witchcraft_bench_10x`` for 10x) on the server the
project uses (the embedded PostgreSQL, or the server of ``DATABASE_URL``), drops them first,
migrates them and loads them with ``manage.py seed_demo``. Everything Django runs (migrate,
seed_demo, gunicorn, the page timings) runs in a subprocess whose ``DATABASE_URL`` names the
benchmark database.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
WORK = ROOT / ".witchcraft" / "bench"  # logs, pgbench transaction logs, tokens (not committed)
PYTHON = sys.executable
DB_1X = "witchcraft_bench"
DB_10X = "witchcraft_bench_10x"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def with_database(url: str, dbname: str) -> str:
    """``url`` naming ``dbname`` instead of its own database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def libpq_parts(url: str) -> dict[str, str]:
    """host, port, user and dbname of a postgres URL (for pgbench's and psql's options)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return {
        "host": query.get("host") or parts.hostname or "",
        "port": str(query.get("port") or parts.port or 5432),
        "user": parts.username or "postgres",
        "dbname": parts.path.lstrip("/"),
    }


def server_url() -> str:
    """A URL of the server the project uses, naming its maintenance database ``postgres``.

    With ``DATABASE_URL`` that URL's server; otherwise the embedded server, started if needed.
    """
    configured = os.environ.get("DATABASE_URL", "")
    if configured:
        return with_database(configured, "postgres")
    subprocess.run(
        [PYTHON, "manage.py", "db", "start"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    done = subprocess.run(
        [PYTHON, "manage.py", "db", "url"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return with_database(done.stdout.strip().splitlines()[-1], "postgres")


@dataclass
class BenchDatabase:
    """One of the benchmark's databases: created empty, migrated, loaded."""

    server: str  # URL of the server's ``postgres`` database
    name: str

    @property
    def url(self) -> str:
        return with_database(self.server, self.name)

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, **kwargs)

    def recreate(self) -> None:
        if not self.name.startswith("witchcraft_bench"):
            raise SystemExit(f"bench: refusing to drop {self.name!r}: not a benchmark database")
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def django_env(self, **extra: str) -> dict[str, str]:
        """The environment of a Django process on this database, in production mode."""
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "DEBUG": "false",
            "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
            "SECURE_PROXY_SSL_HEADER": "true",  # the clients say X-Forwarded-Proto: https
            "MAIL_IN_BACKGROUND": "false",
            "EMAIL_URL": "dummymail://",
            "DJANGO_SETTINGS_MODULE": "witchcraft.settings",
            # The benchmark's API clients reserve and record with their own tokens (a
            # deployment where users bring their own provider keys): the same request path
            # as the backend's service credential, one credential per user.
            "USAGE_SELF_REPORTING": "true",
        }
        env.pop("PYTEST_ADDOPTS", None)
        env.update(extra)
        return env

    def manage(self, *args: str, quiet: bool = True) -> None:
        logfile = WORK / f"{self.name}-{args[0]}.log"
        with logfile.open("w") as out:
            done = subprocess.run(
                [PYTHON, "manage.py", *args],
                cwd=ROOT,
                env=self.django_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if done.returncode:
            raise SystemExit(
                f"bench: manage.py {' '.join(args)} failed, see {logfile}:\n"
                + logfile.read_text()[-2000:]
            )

    def prepare(self, *, users: int, days: int) -> float:
        """Recreate, migrate, load ``users`` x ``days`` of demo data; return the load's seconds."""
        self.recreate()
        self.manage("migrate", "--noinput")
        started = time.perf_counter()
        self.manage("seed_demo", "--users", str(users), "--days", str(days), "--force")
        seconds = time.perf_counter() - started
        with self.connect() as conn:
            conn.execute((BENCH / "sql" / "reference.sql").read_text())
            conn.execute("VACUUM ANALYZE")
            # The load's dirty pages written now, not during the first measurements.
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                conn.execute("CHECKPOINT")
        return seconds

    def scalar(self, sql: str, params=None):
        with self.connect() as conn:
            return conn.execute(sql, params).fetchone()[0]


def require(name: str, install: str) -> str:
    """The path of the program ``name``, or exit saying how to install it (no traceback)."""
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"bench: {name} is not installed ({install})")
    return found


def pg_bin(name: str, server_version_num: int) -> str:
    """The client program ``name`` of the server's major version when installed, else PATH's."""
    major = server_version_num // 10000
    for candidate in (Path(f"/usr/lib/postgresql/{major}/bin/{name}"),):
        if candidate.exists():
            return str(candidate)
    return require(name, "apt-get install postgresql-client")


def machine(db: BenchDatabase) -> dict:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    except (OSError, TypeError):
        memory_kb = 0
    with db.connect() as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'synchronous_commit', 'max_connections', 'fsync', 'jit')"
            ).fetchall()
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": version.split(" on ")[0],
        "postgresql_settings": settings,
        "server": "embedded" if not os.environ.get("DATABASE_URL") else "DATABASE_URL",
        "commit": commit,
        "load_average_at_start": os.getloadavg()[0],
    }


@dataclass
class Figure:
    """One line of the results: a value, its reference, the ratio and the target."""

    key: str
    label: str
    unit: str
    value: float | None
    reference: float | None = None
    reference_label: str = "—"
    reference_unit: str = ""  # when not the value's
    target: str = ""
    met: bool | None = None
    runs: list[float] = field(default_factory=list)
    reference_runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.reference:
            return None
        return self.value / self.reference

    def as_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items()}
        data["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        return data


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
