"""Figures measured over HTTP against gunicorn (witchcraft/gunicorn.conf.py, DEBUG=false, the
worker count it picks for this machine): POST /api/v1/usage and POST /api/v1/quota/consume
driven by wrk with a Lua script (bench/lua/), POST /api/v1/usage/batch from one client, and
the workers' resident memory after the runs.

wrk runs 2 threads and 16 connections; its own CPU time is recorded to show it is not the
bottleneck. Each request carries ``X-Forwarded-Proto: https`` as the TLS proxy in front of
gunicorn would, and a bearer token of one of the benchmark's API clients (bench/clients.py).
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.harness import PYTHON, ROOT, WORK, BenchDatabase, log, median

LUA = Path(__file__).resolve().parent / "lua"
GUNICORN = Path(PYTHON).parent / "gunicorn"
CLIENTS = 200  # API clients (tokens), 16 connections rotate over them
HEADERS = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}


def redis_url() -> str:
    """The shared cache production uses (rate limits, the plan's rate): REDIS_URL, else the
    machine's Redis when it answers (database 15, the benchmark's own), else none (each worker
    then caches on its own, as in development)."""
    configured = os.environ.get("REDIS_URL", "")
    if configured:
        return configured
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return "redis://127.0.0.1:6379/15"
    except OSError:
        pass
    return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def issue_clients(db: BenchDatabase) -> tuple[Path, list[str]]:
    path = WORK / f"tokens-{db.name}.txt"
    done = subprocess.run(
        [PYTHON, "-m", "bench.clients", str(CLIENTS), str(path)],
        cwd=ROOT,
        env=db.django_env(),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"bench: could not make the API clients:\n{done.stderr[-2000:]}")
    return path, path.read_text().split()


@contextmanager
def gunicorn(db: BenchDatabase):
    """gunicorn on a free port, serving the benchmark database; yields (base URL, master pid)."""
    port = _free_port()
    logfile = WORK / "gunicorn.log"
    env = db.django_env(HOST="127.0.0.1", PORT=str(port), GUNICORN_LOG_LEVEL="warning")
    if redis_url():
        env["REDIS_URL"] = redis_url()
    with logfile.open("w") as out:
        process = subprocess.Popen(
            [str(GUNICORN), "-c", "witchcraft/gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: gunicorn exited:\n{logfile.read_text()[-2000:]}")
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: gunicorn did not answer:\n{logfile.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def workers(master: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                found.append(int(entry.name))
    return found


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def warm_up(base: str, tokens_file: Path) -> None:
    """Every worker has loaded its URLs, opened its connection and cached what it caches
    before a measured run: two seconds of each script's load, not counted."""
    for script in ("usage", "quota"):
        wrk(base, script, tokens_file, seconds=2)


def wrk(
    base: str,
    script: str,
    tokens_file: Path,
    *,
    seconds: float,
    connections: int = 16,
    run_id: str = "",
) -> dict:
    """One wrk run; its requests/s, latency percentiles (ms) and wrk's own CPU use (cores)."""
    env = {**os.environ, "BENCH_TOKENS": str(tokens_file), "BENCH_LUA": str(LUA)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA / f"{script}.lua"),
            base,
            "--",
            run_id or uuid.uuid4().hex[:8],
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"bench: wrk {script} failed:\n{done.stdout}\n{done.stderr}")
    result = json.loads(line[len("BENCH ") :])
    if result["errors"] or result["unexpected"]:
        raise SystemExit(
            f"bench: wrk {script}: {result['errors']} socket errors, "
            f"{result['unexpected']} unexpected answers "
            f"(first: {result['first_unexpected']})"
        )
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result["rps"] = result["requests"] / result["seconds"]
    result["wrk_cores"] = cpu / result["seconds"]
    return result


def reset_quotas(db: BenchDatabase, user_ids: str) -> None:
    with db.connect() as conn:
        conn.execute(
            "UPDATE public.user_quotas SET tokens_used = 0, cost_used = 0 "
            "WHERE user_id = ANY(%s::bigint[])",
            ["{" + user_ids + "}"],
        )


def batch_records(count: int, run: str) -> list[dict]:
    rng = random.Random(7)
    models = ["gpt-5-mini", "gpt-5", "claude-sonnet-4-5", "gemini-2.5-flash"]
    return [
        {
            "request_id": f"batch-{run}-{i}",
            "model": models[i % len(models)],
            "input_tokens": rng.randint(200, 3000),
            "output_tokens": rng.randint(50, 800),
            "latency_ms": rng.randint(200, 4000),
        }
        for i in range(count)
    ]


def batch_rates(base: str, token: str, *, batches: int) -> list[float]:
    """Records/s of POST /api/v1/usage/batch with 1,000 new records, one client, back to back."""
    session = requests.Session()
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    rates = []
    for _ in range(batches):
        body = json.dumps({"records": batch_records(1000, uuid.uuid4().hex[:10])})
        started = time.perf_counter()
        answer = session.post(f"{base}/api/v1/usage/batch", data=body, headers=headers, timeout=60)
        elapsed = time.perf_counter() - started
        if answer.status_code != 200 or answer.json()["recorded"] != 1000:
            raise SystemExit(f"bench: batch answered {answer.status_code}: {answer.text[:300]}")
        rates.append(1000 / elapsed)
    return rates


def copy_rows(db: BenchDatabase, user_id: int) -> list[dict]:
    """The rows record_ai_usage_batch stores for a batch like batch_records(), for COPY."""
    from datetime import UTC, datetime

    with db.connect() as conn:
        catalog = {
            name: (mid, pid, (pin, pout, pcached))
            for mid, pid, name, pin, pout, pcached in conn.execute(
                "SELECT id, provider_id, name, input_price_per_million, "
                "output_price_per_million, cached_input_price_per_million "
                "FROM public.ai_models"
            ).fetchall()
        }
    now = datetime.now(UTC)
    rows = []
    for record in batch_records(1000, "copy"):
        model_id, provider_id, prices = catalog[record["model"]]
        cost = round(
            (record["input_tokens"] * prices[0] + record["output_tokens"] * prices[1]) / 1_000_000,
            6,
        )
        rows.append(
            {
                **record,
                "user_id": user_id,
                "model_id": model_id,
                "provider_id": provider_id,
                "prices": prices,
                "cost": cost,
                "created_at": now,
            }
        )
    return rows


def run_all(db: BenchDatabase, *, seconds: float, runs: int, batches: int) -> dict:
    tokens_file, tokens = issue_clients(db)
    with db.connect() as conn:  # the clients' users, whose quotas each run starts from empty
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT t.user_id FROM public.access_tokens t WHERE t.name = 'benchmark'"
            ).fetchall()
        ]
    id_list = ",".join(map(str, ids))
    out: dict = {"usage": [], "quota": [], "batch": [], "rss_mib": []}
    with gunicorn(db) as (base, master):
        warm_up(base, tokens_file)
        out["workers"] = len(workers(master))
        for run in range(runs):
            reset_quotas(db, id_list)
            usage = wrk(base, "usage", tokens_file, seconds=seconds)
            reset_quotas(db, id_list)
            quota = wrk(base, "quota", tokens_file, seconds=seconds)
            out["usage"].append(usage)
            out["quota"].append(quota)
            log(
                f"HTTP run {run + 1}/{runs}: POST /usage {usage['rps']:,.0f} req/s "
                f"(p99 {usage['p99']:.1f} ms, wrk {usage['wrk_cores']:.2f} cores); "
                f"POST /quota/consume p99 {quota['p99']:.1f} ms ({quota['rps']:,.0f} req/s)"
            )
        out["batch"] = batch_rates(base, tokens[0], batches=batches)
        log(f"POST /usage/batch: median {median(out['batch']):,.0f} records/s")
        out["rss_mib"] = [rss_mib(pid) for pid in workers(master)]
        log(f"gunicorn workers' RSS: {', '.join(f'{x:.0f}' for x in out['rss_mib'])} MiB")
    reset_quotas(db, id_list)
    out["copy_user"] = ids[0]
    return out
