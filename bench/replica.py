"""The read replica under ingest: ``python -m bench.replica`` (``--users``/``--days`` for the data
set, ``--seconds`` per measurement, ``--rounds``, ``--clients`` for the page load). Writes
``bench/results/replica.json`` and ``replica.md``.

On an embedded PostgreSQL of its own (a new ``WITCHCRAFT_DATA_DIR`` under ``.witchcraft/bench``;
the development data is never touched) and its development standby (``manage.py db replica
start``), run the way an operator runs them, through ``manage.py``:

1. migrate, ``seed_demo --users N --days D``, then the standby;
2. two gunicorns on the same primary (2 workers each): R with ``DATABASE_REPLICA_URL=embedded``
   (staff analytics read on the standby), P without it (read on the primary);
3. each round measures, in an order that alternates between rounds so that drift of the machine
   hits both servers: ``record_ai_usage`` at full rate alone (``bench/sql/record_usage.pgbench``,
   8 connections, pgbench); the same ingest while ``--clients`` staff browsers load
   ``/dashboard/`` and ``/dashboard/usage/`` from P; the same from R. Each gives the ingest's
   calls/s, the pages' latencies, and the standby's replay lag sampled every 0.5 s (bytes of WAL
   the primary wrote that the standby has not replayed, and the age of its last replayed commit).
   Every page R served is checked for "Figures from the read replica"; those that were read on
   the primary instead (the replica's fallback) are counted, with R's reasons from /metrics.

The figures are medians over the rounds. The folder is deleted at the end, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg
import redis
import requests

from bench import figures_db
from bench.harness import PYTHON, RESULTS, ROOT, WORK, log, machine, median, percentile, write_json
from witchcraft.platform import embedded_db
from witchcraft.testing.servers import (
    clean_env,
    free_port,
    start_gunicorn,
    stop,
    wait_until_answers,
)

PAGES = ("/dashboard/", "/dashboard/usage/")
AS_OF = "Figures from the read replica"
INGEST_CLIENTS = 8
LAG_EVERY_SECONDS = 0.5
# The read-your-writes positions, shared by the workers: a database of the benchmark's own, emptied
# first (a position kept by an earlier run, of another cluster's WAL, would hold R's staff member
# on the primary for up to 10 minutes).
REDIS_URL = "redis://127.0.0.1:6379/13"
STAFF = """
import json
from django.test import Client
from accounts.models import User
user = User.objects.filter(email='bench-replica-staff@example.com').first()
if user is None:
    user = User.objects.create_user(
        email='bench-replica-staff@example.com', password=None, is_staff=True
    )
client = Client()
client.force_login(user)
print(json.dumps({key: morsel.value for key, morsel in client.cookies.items()}))
"""


class Primary:
    """The benchmark's own embedded server and its standby, driven through manage.py; also what
    ``figures_db.Pgbench`` and ``harness.machine`` need of a database (``connect``, ``url``)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.env = clean_env(WITCHCRAFT_DATA_DIR=str(data))

    def manage(self, *args: str, env: dict | None = None) -> tuple[str, float]:
        started = time.perf_counter()
        done = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"bench: manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return done.stdout, seconds

    def quietly(self, *args: str) -> None:
        """``manage.py`` for the clean-up: its failure is not the run's."""
        subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True)

    def info(self, standby: bool = False) -> embedded_db.ServerInfo:
        pgdata = self.data / "replica" / "pgdata" if standby else self.data / "pgdata"
        info = embedded_db.read_pidfile(pgdata)
        if info is None:
            raise SystemExit(f"bench: no server is running on {pgdata}")
        return info

    @property
    def url(self) -> str:
        return self.info().url()

    def connect(self, standby: bool = False, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.info(standby).url(), autocommit=True, **kwargs)

    def caught_up(self, seconds: float = 120) -> None:
        """Wait until the standby has replayed everything the primary had written."""
        with self.connect() as conn:
            (target,) = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        deadline = time.monotonic() + seconds
        with self.connect(standby=True) as conn:
            while time.monotonic() < deadline:
                query = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
                if conn.execute(query, [str(target)]).fetchone()[0]:
                    return
                time.sleep(0.1)
        raise SystemExit(f"bench: the standby did not catch up within {seconds:.0f} s")


class LagSampler(threading.Thread):
    """The standby's replay lag every 0.5 s while the ingest runs: bytes of the primary's WAL it
    has not replayed, and the age of the last commit it replayed."""

    def __init__(self, primary: Primary) -> None:
        super().__init__(daemon=True)
        self.primary = primary
        self.done = threading.Event()
        self.bytes: list[float] = []
        self.seconds: list[float] = []
        self.error = ""
        self.started = datetime.now(UTC)

    def run(self) -> None:
        try:
            with self.primary.connect() as main, self.primary.connect(standby=True) as standby:
                while not self.done.is_set():
                    (position,) = main.execute("SELECT pg_current_wal_lsn()").fetchone()
                    behind, replayed, age = standby.execute(
                        "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint,"
                        " pg_last_xact_replay_timestamp(),"
                        " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8",
                        [str(position)],
                    ).fetchone()
                    self.bytes.append(max(0, behind or 0))
                    # The age of the last replayed commit is a lag only once the ingest's
                    # commits are replayed: before that it is the quiet time before the run.
                    if replayed is not None and replayed >= self.started:
                        self.seconds.append(max(0.0, age))
                    self.done.wait(LAG_EVERY_SECONDS)
        except psycopg.Error as error:  # reported, not fatal: the other figures still stand
            self.error = str(error)

    def result(self) -> dict:
        return {
            "samples": len(self.bytes),
            "bytes_max": max(self.bytes, default=None),
            "bytes_p95": percentile(self.bytes, 95) if self.bytes else None,
            "seconds_max": max(self.seconds, default=None),
            "seconds_p95": percentile(self.seconds, 95) if self.seconds else None,
            "error": self.error,
        }


PRIMARY_CPU, OTHER_CPU = 0, 1
SPLIT = {"on": False}


def _pin(pid: int, cpu: int) -> int:
    """``pid`` and every process under it on ``cpu`` (processes they start later inherit it)."""
    root = psutil.Process(pid)
    pinned = 0
    for process in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.cpu_affinity([cpu])
            pinned += 1
    return pinned


def split_cores(primary: Primary, webs: list[subprocess.Popen]) -> None:
    """Two hosts on one machine: the primary (its postmaster, hence every backend it starts) on
    PRIMARY_CPU with the ingest; the standby, both gunicorns and the browsers on OTHER_CPU."""
    SPLIT["on"] = True
    _pin(primary.info().pid, PRIMARY_CPU)
    _pin(primary.info(standby=True).pid, OTHER_CPU)
    for web in webs:
        _pin(web.pid, OTHER_CPU)
    log(f"split cores: the primary on CPU {PRIMARY_CPU}, the rest on CPU {OTHER_CPU}")


def load_pages(base: str, cookies: dict, *, clients: int, seconds: float) -> dict:
    """``clients`` staff browsers loading the dashboard's pages in turn for ``seconds``."""
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    times: dict[str, list[float]] = {path: [] for path in PAGES}
    counts = {"from_replica": 0, "not_from_replica": 0, "errors": 0}
    problems: list[str] = []

    def browse(first: int) -> None:
        if SPLIT["on"]:  # the browsers beside the web servers and the standby
            os.sched_setaffinity(0, {OTHER_CPU})
        session = requests.Session()
        session.cookies.update(cookies)
        turn = first
        while time.monotonic() < deadline:
            path = PAGES[turn % len(PAGES)]
            turn += 1
            started = time.perf_counter()
            try:
                response = session.get(base + path, timeout=60, allow_redirects=False)
            except requests.RequestException as error:
                with lock:
                    counts["errors"] += 1
                    problems.append(f"{path}: {error}")
                continue
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if response.status_code != 200:
                    counts["errors"] += 1
                    problems.append(f"{path}: HTTP {response.status_code}")
                    continue
                times[path].append(elapsed)
                counts["from_replica" if AS_OF in response.text else "not_from_replica"] += 1

    threads = [threading.Thread(target=browse, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [t for path in PAGES for t in times[path]]
    return {
        "count": len(every),
        "p50_ms": percentile(every, 50),
        "p95_ms": percentile(every, 95),
        "pages": {
            path: {"count": len(t), "p50_ms": percentile(t, 50), "p95_ms": percentile(t, 95)}
            for path, t in times.items()
        },
        **counts,
        "problems": problems[:5],
    }


def replica_reads(base: str) -> dict[str, float]:
    """R's ``witchcraft_replica_reads_total`` from /metrics, by ``server:reason``."""
    try:
        text = requests.get(f"{base}/metrics", timeout=30).text
    except requests.RequestException:
        return {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("witchcraft_replica_reads_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(",")
        )
        key = f"{labels.get('server', '').strip(chr(34))}:{labels.get('reason', '').strip(chr(34))}"
        counts[key] = counts.get(key, 0) + float(line.split()[-1])
    return counts


def measure(
    primary: Primary,
    bench: figures_db.Pgbench,
    *,
    seconds: float,
    clients: int,
    server: tuple[str, str] | None,
    cookies: dict,
) -> dict:
    """The ingest at full rate for ``seconds`` (with the page load on ``server`` when named),
    the standby's lag meanwhile. Each starts from the loaded quotas, right after a checkpoint
    and with the standby caught up."""
    figures_db.restore_loaded_quotas(bench.db)
    with primary.connect() as conn:
        conn.execute("CHECKPOINT")
    primary.caught_up()
    base = server[1] if server else ""
    reads_before = replica_reads(base) if server and server[0] == "R" else {}
    sampler = LagSampler(primary)
    ingest: dict = {}

    def record() -> None:
        if SPLIT["on"]:  # this thread's pgbench runs beside the primary
            os.sched_setaffinity(0, {PRIMARY_CPU})
        ingest.update(bench.run("record_usage", seconds=seconds, clients=INGEST_CLIENTS))

    pgbench = threading.Thread(target=record, daemon=True)
    sampler.start()
    pgbench.start()
    pages = load_pages(base, cookies, clients=clients, seconds=seconds) if server else None
    pgbench.join()
    sampler.done.set()
    sampler.join()
    if not ingest:
        raise SystemExit("bench: pgbench did not finish (see above)")
    out = {"tps": ingest["tps"], "lag": sampler.result()}
    if pages is not None:
        out["pages"] = pages
    if reads_before or (server and server[0] == "R"):
        after = replica_reads(base)
        out["replica_reads"] = {
            key: after[key] - reads_before.get(key, 0)
            for key in after
            if after[key] - reads_before.get(key, 0)
        }
    return out


def _median_of(runs: list[dict], *keys: str) -> float | None:
    values = []
    for run in runs:
        value = run
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(value)
    return median(values) if values else None


def summarise(rounds: list[dict]) -> dict:
    """Medians over the rounds, per measurement."""
    summary = {}
    for name in ("alone", "P", "R"):
        runs = [r[name] for r in rounds]
        summary[name] = {
            "tps": _median_of(runs, "tps"),
            "lag_bytes_max": _median_of(runs, "lag", "bytes_max"),
            "lag_bytes_p95": _median_of(runs, "lag", "bytes_p95"),
            "lag_seconds_max": _median_of(runs, "lag", "seconds_max"),
            "lag_seconds_p95": _median_of(runs, "lag", "seconds_p95"),
        }
        if name != "alone":
            summary[name] |= {
                "pages_p50_ms": _median_of(runs, "pages", "p50_ms"),
                "pages_p95_ms": _median_of(runs, "pages", "p95_ms"),
                "pages_count": _median_of(runs, "pages", "count"),
                "pages_errors": sum(r["pages"]["errors"] for r in runs),
                "not_from_replica": sum(r["pages"]["not_from_replica"] for r in runs),
                "from_replica": sum(r["pages"]["from_replica"] for r in runs),
            }
            for path in PAGES:
                summary[name][f"p95_ms {path}"] = _median_of(runs, "pages", "pages", path, "p95_ms")
    alone = summary["alone"]["tps"]
    for name in ("P", "R"):
        tps = summary[name]["tps"]
        summary[name]["tps_ratio_to_alone"] = tps / alone if tps and alone else None
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replica", description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="staff browsers loading pages")
    parser.add_argument(
        "--split-cores",
        action="store_true",
        help="the standby as if on a host of its own: the primary and the ingest on CPU 0, the"
        " standby, the web servers and the browsers on CPU 1 (default output replica-split)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS / "replica",
        help="results as OUTPUT.json and OUTPUT.md (default bench/results/replica)",
    )
    args = parser.parse_args()
    if args.split_cores and args.output == RESULTS / "replica":
        args.output = RESULTS / "replica-split"
    if args.split_cores and len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("bench: --split-cores needs two CPUs")
    # Stopped (SIGTERM as well as Ctrl-C): the servers stopped and the folder deleted all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: stopped"))

    data = WORK / "replica"
    if data.exists():
        old = Primary(data)
        old.quietly("db", "replica", "stop")
        old.quietly("db", "stop")
        shutil.rmtree(data)
    data.mkdir(parents=True)
    primary = Primary(data)
    results: dict = {
        "users": args.users,
        "days": args.days,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "clients": args.clients,
        "ingest_clients": INGEST_CLIENTS,
        "split_cores": args.split_cores,
        "measured_at": str(datetime.now(UTC)),
    }
    secret = secrets.token_urlsafe(50)
    served = {
        **primary.env,
        "DEBUG": "false",
        "SECRET_KEY": secret,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "STAFF_2FA_REQUIRED": "false",
        "METRICS_ALLOWED_IPS": "127.0.0.1",
        "MAIL_IN_BACKGROUND": "false",
        "EMAIL_URL": "dummymail://",
        "REDIS_URL": REDIS_URL,
        "WEB_CONCURRENCY": "2",
        "GUNICORN_LOG_LEVEL": "warning",
        "HOST": "127.0.0.1",
    }
    webs: list[subprocess.Popen] = []
    redis.Redis.from_url(REDIS_URL).flushdb()
    try:
        primary.manage("db", "start")
        primary.manage("migrate", "--noinput", "-v0")
        log(f"loading {args.users:,} users x {args.days} days")
        _, results["load_seconds"] = primary.manage(
            "seed_demo", "--users", str(args.users), "--days", str(args.days), "--force"
        )
        with primary.connect() as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS bench")  # figures_db's loaded quotas
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
            results["database_bytes"] = conn.execute(
                "SELECT pg_database_size('witchcraft')"
            ).fetchone()[0]
            results["usage_rows"] = conn.execute(
                "SELECT count(*) FROM ai_usage_requests"
            ).fetchone()[0]
        log(f"loaded in {results['load_seconds']:.0f} s; the standby")
        _, results["standby_start_seconds"] = primary.manage("db", "replica", "start")
        primary.manage("collectstatic", "--noinput", "-v0", env=served)
        out, _ = primary.manage("shell", "-c", STAFF, env=served)
        cookies = json.loads(out.strip().splitlines()[-1])

        bases = {}
        for name in ("R", "P"):
            port = free_port()
            env = {**served, "PORT": str(port)}
            if name == "R":
                env["DATABASE_REPLICA_URL"] = "embedded"
            logfile = WORK / f"replica-gunicorn-{name}.log"
            web = start_gunicorn(env=env, log=logfile)
            webs.append(web)
            bases[name] = f"http://127.0.0.1:{port}"
            if not wait_until_answers(f"{bases[name]}/healthz", web):
                raise SystemExit(f"bench: gunicorn {name} did not answer, see {logfile}")
            for path in PAGES:  # warm: each worker's first page loads the templates
                for _ in range(4):
                    requests.get(bases[name] + path, cookies=cookies, timeout=60)
        check = requests.get(bases["R"] + PAGES[0], cookies=cookies, timeout=60)
        if check.status_code != 200:
            raise SystemExit(f"bench: R's {PAGES[0]} answered {check.status_code}")
        results["first_page_from_replica"] = AS_OF in check.text

        if args.split_cores:
            split_cores(primary, webs)
        info = machine(primary)
        info["server"] = "embedded (the benchmark's own), its development standby"
        info["load_average_at_start"] = os.getloadavg()[0]
        results["machine"] = info
        bench = figures_db.Pgbench(primary, str(embedded_db.bin_dir() / "pgbench"))
        figures_db.keep_loaded_quotas(primary)

        rounds = []
        for number in range(args.rounds):
            order = ("R", "P") if number % 2 == 0 else ("P", "R")
            this: dict = {"order": ["alone", *order]}
            common = {"seconds": args.seconds, "clients": args.clients, "cookies": cookies}
            this["alone"] = measure(primary, bench, server=None, **common)
            for name in order:
                this[name] = measure(primary, bench, server=(name, bases[name]), **common)
            this["load_average_after"] = os.getloadavg()[0]
            rounds.append(this)
            log(
                f"round {number + 1}/{args.rounds}: ingest alone {this['alone']['tps']:,.0f}/s, "
                f"with P {this['P']['tps']:,.0f}/s (pages p95 {this['P']['pages']['p95_ms']:.0f} "
                f"ms), with R {this['R']['tps']:,.0f}/s (pages p95 "
                f"{this['R']['pages']['p95_ms']:.0f} ms, "
                f"{this['R']['pages']['not_from_replica']} not from the replica)"
            )
        results["rounds_detail"] = rounds
        results["summary"] = summarise(rounds)
        results["load_average_at_end"] = os.getloadavg()[0]
    finally:
        for web in webs:
            with contextlib.suppress(OSError):
                stop(web)
        primary.quietly("db", "replica", "stop")
        primary.quietly("db", "stop")
        shutil.rmtree(data, ignore_errors=True)
    output: Path = args.output
    write_json(output.with_suffix(".json"), results)
    output.with_suffix(".md").write_text(report(results))
    log(f"wrote {output.with_suffix('.md')}")
    print(output.with_suffix(".md").read_text())


def _number(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{unit}"


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "—"
    return f"{value / reference:.2f}"


def report(r: dict) -> str:
    s = r["summary"]
    rr, pp, alone = s["R"], s["P"], s["alone"]
    kib = 1024
    m = r.get("machine", {})
    lines = [
        f"# The read replica under ingest, {r['users']:,} users x {r['days']} days"
        + (" (split cores)" if r.get("split_cores") else ""),
        "",
        *(
            [
                "Split cores: the standby as if on a host of its own. The primary (every backend)"
                " and the ingest on CPU 0; the standby, both gunicorns and the browsers on CPU 1.",
                "",
            ]
            if r.get("split_cores")
            else []
        ),
        f"Measured {r['measured_at'][:19]} UTC by `python -m bench.replica` (bench/replica.py) "
        f"on the embedded {m.get('postgresql', 'PostgreSQL')} and its development standby, "
        f"{m.get('cpus', '?')} cores, commit {m.get('commit', '?')}; {r['rounds']} rounds of "
        f"{r['seconds']:g} s per measurement, medians. Ingest: `record_ai_usage` at full rate "
        f"(pgbench, {r['ingest_clients']} connections); page load: {r['clients']} staff browsers "
        f"on {', '.join(f'`{p}`' for p in PAGES)}, gunicorn with 2 workers. Load average at "
        f"start {m.get('load_average_at_start', 0):.2f}, at the end "
        f"{r.get('load_average_at_end', 0):.2f}.",
        "",
        "| figure | via replica (R) | via primary (P) | ratio R/P |",
        "|---|---|---|---|",
        f"| staff pages p50 under ingest | {_number(rr['pages_p50_ms'], 0, ' ms')} | "
        f"{_number(pp['pages_p50_ms'], 0, ' ms')} | "
        f"{_ratio(rr['pages_p50_ms'], pp['pages_p50_ms'])} |",
        f"| staff pages p95 under ingest | {_number(rr['pages_p95_ms'], 0, ' ms')} | "
        f"{_number(pp['pages_p95_ms'], 0, ' ms')} | "
        f"{_ratio(rr['pages_p95_ms'], pp['pages_p95_ms'])} |",
    ]
    for path in PAGES:
        key = f"p95_ms {path}"
        lines.append(
            f"| `{path}` p95 under ingest | {_number(rr[key], 0, ' ms')} | "
            f"{_number(pp[key], 0, ' ms')} | {_ratio(rr[key], pp[key])} |"
        )
    lines += [
        f"| pages served in {r['seconds']:g} s | {_number(rr['pages_count'])} | "
        f"{_number(pp['pages_count'])} | {_ratio(rr['pages_count'], pp['pages_count'])} |",
        f"| `record_ai_usage` calls/s with the page load | {_number(rr['tps'])} | "
        f"{_number(pp['tps'])} | {_ratio(rr['tps'], pp['tps'])} |",
        f"| the same, ratio to the ingest alone ({_number(alone['tps'])}/s) | "
        f"{_number(rr['tps_ratio_to_alone'], 2)} | {_number(pp['tps_ratio_to_alone'], 2)} | — |",
        f"| standby replay lag, max (p95) | {_number(rr['lag_seconds_max'], 2, ' s')} "
        f"({_number(rr['lag_seconds_p95'], 2, ' s')}) | "
        f"{_number(pp['lag_seconds_max'], 2, ' s')} ({_number(pp['lag_seconds_p95'], 2, ' s')}) "
        "| — |",
        f"| standby replay lag in WAL, max (p95) | "
        f"{_number((rr['lag_bytes_max'] or 0) / kib, 0, ' KiB')} "
        f"({_number((rr['lag_bytes_p95'] or 0) / kib, 0, ' KiB')}) | "
        f"{_number((pp['lag_bytes_max'] or 0) / kib, 0, ' KiB')} "
        f"({_number((pp['lag_bytes_p95'] or 0) / kib, 0, ' KiB')}) | — |",
        "",
        f"Ingest alone: standby replay lag max {_number(alone['lag_seconds_max'], 2, ' s')} "
        f"(p95 {_number(alone['lag_seconds_p95'], 2, ' s')}), "
        f"{_number((alone['lag_bytes_max'] or 0) / kib, 0, ' KiB')} of WAL "
        f"(p95 {_number((alone['lag_bytes_p95'] or 0) / kib, 0, ' KiB')}). "
        f"Pages R served that were not read on the replica (its fallback to the primary), all "
        f"rounds: {rr['not_from_replica']:,} of {rr['not_from_replica'] + rr['from_replica']:,}"
        f"; page errors: R {rr['pages_errors']}, P {pp['pages_errors']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
