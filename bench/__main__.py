"""``python -m bench [--quick] [--runs N]``: Witchcraft's benchmark (bench/README.md).

Builds its own databases (never the development data), measures every figure of the
benchmark's table against a reference measured in the same run, and writes
bench/results/latest.json and bench/results/latest.md (``--quick`` writes quick.json and
quick.md instead: a smaller data set and shorter runs, under two minutes, for trying a change).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench import figures_db, figures_http
from bench.harness import (
    DB_1X,
    DB_10X,
    PYTHON,
    RESULTS,
    ROOT,
    WORK,
    BenchDatabase,
    Figure,
    log,
    machine,
    median,
    pg_bin,
    require,
    server_url,
    write_json,
)
from bench.report import markdown

PAGES = ["/dashboard/", "/dashboard/usage/", "/me/", "/me/usage/"]


@dataclass(frozen=True)
class Plan:
    name: str
    users: int  # 1x; 10x has ten times as many users, hence ten times the usage rows
    days: int
    seconds: float  # per pgbench / wrk run
    runs: int
    batches: int
    copies: int
    loads: int
    maintenance_runs: int


FULL = Plan(
    "full",
    users=1000,
    days=30,
    seconds=10,
    runs=3,
    batches=10,
    copies=10,
    loads=20,
    maintenance_runs=3,
)
QUICK = Plan(
    "quick",
    users=100,
    days=30,
    seconds=3,
    runs=2,
    batches=3,
    copies=5,
    loads=20,
    maintenance_runs=2,
)


def pages(db: BenchDatabase, loads: int, rounds: int) -> dict:
    out = WORK / f"pages-{db.name}.json"
    env = db.django_env(ALLOWED_HOSTS="testserver,127.0.0.1,localhost")
    done = subprocess.run(
        [PYTHON, "-m", "bench.pages", str(out), "--loads", str(loads), "--rounds", str(rounds)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"bench: page timings failed:\n{done.stdout}{done.stderr[-3000:]}")
    return json.loads(out.read_text())


# The first of the month, as monthly_maintenance() meets it: every quota's period and every
# current subscription's billing period ended (moved back by one month, in the measured run's
# transaction only), so that every user is handled: quotas rolled, subscriptions renewed,
# canceled or expired, the previous month's report written.
MONTH_END = """
UPDATE public.user_quotas
   SET period_start = period_start - interval '1 month', period_end = period_start;
UPDATE public.user_subscriptions
   SET current_period_start = current_period_start - interval '1 month',
       current_period_end = current_period_end - interval '1 month'
 WHERE status IN ('trialing', 'active', 'past_due');
"""


def maintenance(db: BenchDatabase, function: str, runs: int, prepare: str = "") -> list[float]:
    """Seconds of ``function()`` as the worker runs it (runtime role, service context), each
    run in a transaction rolled back afterwards so that every run does the whole work;
    ``prepare`` runs first in the same transaction, not timed."""
    times = []
    with db.connect() as conn:
        for _ in range(runs):
            conn.execute("BEGIN")
            if prepare:
                conn.execute(prepare)
            conn.execute("SET LOCAL ROLE witchcraft_app")
            conn.execute("SELECT set_config('app.is_service', 'true', true)")
            started = time.perf_counter()
            conn.execute(f"SELECT public.{function}()")
            times.append(time.perf_counter() - started)
            conn.execute("ROLLBACK")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, short runs (< 2 min)")
    parser.add_argument("--runs", type=int, help="runs per figure (median reported)")
    parser.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="the seed's upper band: the pages and the maintenance at N x (N x 1,000 users) "
        "against 1x, nothing else (on demand, not in CI; 100: ~50 million usage rows)",
    )
    options = parser.parse_args()
    if options.scale:
        scale_run(options.scale, runs=options.runs or FULL.runs)
        return
    # Before anything is loaded: the HTTP figures need wrk (`make bench` installs it).
    require("wrk", "apt-get install wrk, or run `make bench`, which installs it")
    plan = QUICK if options.quick else FULL
    if options.runs:
        plan = Plan(**{**plan.__dict__, "runs": options.runs})
    started = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    server = server_url()
    one = BenchDatabase(server, DB_1X)
    ten = BenchDatabase(server, DB_10X)

    log(f"{plan.name} run: loading 1x ({plan.users:,} users x {plan.days} days) into {one.name}")
    load_1x = one.prepare(users=plan.users, days=plan.days)
    one.manage("collectstatic", "--noinput")  # production pages name hashed static files
    info = machine(one)
    info["load_average_at_start"] = os.getloadavg()[0]
    sizes = {"1x": _sizes(one, load_1x)}
    log(f"1x loaded in {load_1x:.1f} s: {sizes['1x']['usage_rows']:,} usage rows")

    page_1x = pages(one, plan.loads, plan.runs)
    log("1x pages: " + ", ".join(f"{p} p95 {page_1x[p]['p95']:.0f} ms" for p in PAGES))

    bench = figures_db.Pgbench(one, pg_bin("pgbench", int(one.scalar("SHOW server_version_num"))))
    record = figures_db.record_usage(bench, seconds=plan.seconds, runs=plan.runs)
    quota_p50, quota_p99 = figures_db.quota_figures(bench, seconds=plan.seconds, runs=plan.runs)
    quota_16 = figures_db.quota_consume(bench, seconds=plan.seconds, runs=plan.runs, clients=16)

    http = figures_http.run_all(one, seconds=plan.seconds, runs=plan.runs, batches=plan.batches)
    copies = figures_db.copy_rate(
        one, figures_http.copy_rows(one, http["copy_user"]), repeats=plan.copies
    )
    log(f"COPY of 1,000 rows: median {median(copies):,.0f} records/s")

    log(f"loading 10x ({plan.users * 10:,} users x {plan.days} days) into {ten.name}")
    load_10x = ten.prepare(users=plan.users * 10, days=plan.days)
    sizes["10x"] = _sizes(ten, load_10x)
    log(f"10x loaded in {load_10x:.1f} s: {sizes['10x']['usage_rows']:,} usage rows")
    page_10x = pages(ten, plan.loads, plan.runs)
    log("10x pages: " + ", ".join(f"{p} p95 {page_10x[p]['p95']:.0f} ms" for p in PAGES))
    daily = maintenance(ten, "daily_maintenance", plan.maintenance_runs)
    monthly = maintenance(ten, "monthly_maintenance", plan.maintenance_runs, MONTH_END)
    log(f"10x maintenance: daily {median(daily):.2f} s, monthly {median(monthly):.2f} s")

    figures = [record, quota_p50, quota_p99]
    figures += _http_figures(http, record, quota_16, copies)
    figures += _page_figures(page_1x, page_10x)
    figures += [
        Figure(
            key="daily_maintenance_s",
            label="`daily_maintenance` at 10x",
            unit="s",
            value=median(daily),
            target="<= 10 s",
            met=median(daily) <= 10,
            runs=daily,
        ),
        Figure(
            key="monthly_maintenance_s",
            label="`monthly_maintenance` at 10x",
            unit="s",
            value=median(monthly),
            target="<= 30 s",
            met=median(monthly) <= 30,
            runs=monthly,
        ),
    ]
    rss = max(http["rss_mib"])
    figures.append(
        Figure(
            key="gunicorn_worker_rss_mib",
            label="gunicorn worker resident memory after the API runs",
            unit="MiB",
            value=rss,
            target="<= 200 MB",
            met=rss * 1.048576 <= 200,
            runs=http["rss_mib"],
            note=f"largest of {len(http['rss_mib'])} workers",
        )
    )
    _write(
        "latest" if plan.name == "full" else "quick",
        plan=plan,
        info=info,
        sizes=sizes,
        started=started,
        figures=figures,
        http_runs={"usage": http["usage"], "quota": http["quota"], "workers": http["workers"]},
    )


def _write(stem: str, *, plan, info, sizes, started, figures, **extra) -> None:
    """bench/results/<stem>.json and .md, and the run's last line."""
    result = {
        "plan": plan.__dict__,
        "machine": info,
        "data": sizes,
        "seconds": round(time.perf_counter() - started, 1),
        "figures": [f.as_dict() for f in figures],
        **extra,
    }
    write_json(RESULTS / f"{stem}.json", result)
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    missed = [f.key for f in figures if f.met is False]
    log(
        f"done in {result['seconds']:.0f} s: bench/results/{stem}.md"
        + (f"; missed: {', '.join(missed)}" if missed else "; every target met")
    )


def scale_run(scale: int, *, runs: int) -> None:
    """``--scale N``: the staff and self-service pages' p95 at N x against 1x (target: within
    1.2x), and daily and monthly maintenance at N x. Writes bench/results/scale<N>.{json,md}."""
    if scale < 2:
        raise SystemExit("bench: --scale must be at least 2 (1x is the reference)")
    plan = Plan(**{**FULL.__dict__, "name": f"scale {scale}x", "runs": runs})
    started = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    server = server_url()
    one, big = BenchDatabase(server, DB_1X), BenchDatabase(server, f"{DB_1X}_{scale}x")
    label = f"{scale}x"
    log(f"scale run: loading 1x ({plan.users:,} users x {plan.days} days) into {one.name}")
    sizes = {"1x": _sizes(one, one.prepare(users=plan.users, days=plan.days))}
    one.manage("collectstatic", "--noinput")
    _room_for(one, scale)
    info = machine(one)
    info["load_average_at_start"] = os.getloadavg()[0]
    page_1x = pages(one, plan.loads, plan.runs)
    users = plan.users * scale
    log(f"loading {label} ({users:,} users x {plan.days} days) into {big.name}")
    sizes[label] = _sizes(big, big.prepare(users=users, days=plan.days))
    log(f"{label} loaded in {sizes[label]['load_seconds']} s: {sizes[label]['usage_rows']:,} rows")
    page_big = pages(big, plan.loads, plan.runs)
    log(f"{label} pages: " + ", ".join(f"{p} p95 {page_big[p]['p95']:.0f} ms" for p in PAGES))
    daily = maintenance(big, "daily_maintenance", plan.maintenance_runs)
    monthly = maintenance(big, "monthly_maintenance", plan.maintenance_runs, MONTH_END)
    log(f"{label} maintenance: daily {median(daily):.2f} s, monthly {median(monthly):.2f} s")
    figures = _page_figures(page_1x, page_big, label=label, limit=1.2)
    figures += [
        Figure(
            key=f"{name}_s",
            label=f"`{name}` at {label}",
            unit="s",
            value=median(times),
            runs=times,
            note="every user's quota rolled and subscription renewed" if "monthly" in name else "",
        )
        for name, times in (("daily_maintenance", daily), ("monthly_maintenance", monthly))
    ]
    _write(f"scale{scale}", plan=plan, info=info, sizes=sizes, started=started, figures=figures)


def _room_for(one: BenchDatabase, scale: int) -> None:
    """Refuse a scale whose database would not fit the server's disk (when that disk is this
    machine's): about ``scale`` times the 1x database, with a fifth more for the WAL."""
    needed = int(one.scalar("SELECT pg_database_size(current_database())")) * scale * 1.2
    folder = Path(one.scalar("SHOW data_directory"))
    if not folder.exists():
        return  # another machine's disk: its operator knows
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise SystemExit(
            f"bench: --scale {scale} needs about {needed / 2**30:.0f} GiB on {folder}'s disk,"
            f" which has {free / 2**30:.0f} GiB free"
        )


def _sizes(db: BenchDatabase, load_seconds: float) -> dict:
    with db.connect() as conn:
        users, usage, daily, messages = conn.execute(
            "SELECT (SELECT count(*) FROM public.users), "
            "(SELECT count(*) FROM public.ai_usage_requests), "
            "(SELECT count(*) FROM public.ai_usage_daily), "
            "(SELECT count(*) FROM public.agent_messages)"
        ).fetchone()
    return {
        "users": users,
        "usage_rows": usage,
        "daily_rows": daily,
        "messages": messages,
        "load_seconds": round(load_seconds, 1),
    }


def _http_figures(http: dict, record: Figure, quota_16: dict, copies: list[float]) -> list:
    usage_rps = [run["rps"] for run in http["usage"]]
    quota_p99 = [run["p99"] for run in http["quota"]]
    batch = http["batch"]
    value = median(usage_rps)
    wrk_cores = max(run["wrk_cores"] for run in http["usage"] + http["quota"])
    return [
        Figure(
            key="api_usage_per_s",
            label="`POST /api/v1/usage` requests/s, gunicorn, 16 clients",
            unit="req/s",
            value=value,
            reference=record.value,
            reference_label="`record_ai_usage` calls/s in the database (above)",
            reference_unit="calls/s",
            target=">= 0.15 x reference and >= 800/s",
            met=value >= 0.15 * record.value and value >= 800,
            runs=usage_rps,
            note=f"{http['workers']} workers; wrk used at most {wrk_cores:.2f} of the 2 cores",
        ),
        Figure(
            key="api_batch_records_per_s",
            label="`POST /api/v1/usage/batch` (1,000 records) records/s",
            unit="records/s",
            value=median(batch),
            reference=median(copies),
            reference_label="`COPY` of the same 1,000 rows (and their key rows)",
            target=">= 0.1 x COPY and >= 30,000/s",
            met=median(batch) >= 0.1 * median(copies) and median(batch) >= 30000,
            runs=batch,
            reference_runs=copies,
            note="one client, batches back to back",
        ),
        Figure(
            key="api_quota_consume_p99_ms",
            label="`POST /api/v1/quota/consume` p99, 16 clients",
            unit="ms",
            value=median(quota_p99),
            reference=median(quota_16["real_p99"]),
            reference_label="`check_and_consume_quota` p99 in the database, 16 connections",
            target="<= 20 ms",
            met=median(quota_p99) <= 20,
            runs=quota_p99,
            reference_runs=quota_16["real_p99"],
            note=f"{median([run['rps'] for run in http['quota']]):,.0f} req/s",
        ),
    ]


def _page_figures(one: dict, ten: dict, *, label: str = "10x", limit: float = 1.5) -> list:
    figures = []
    for path in PAGES:
        a, b = one[path]["p95"], ten[path]["p95"]
        figures.append(
            Figure(
                key=f"page_1x:{path}",
                label=f"`{path}` server time p95 at 1x",
                unit="ms",
                value=a,
                target="<= 150 ms",
                met=a <= 150,
                runs=one[path]["p95_rounds"],
            )
        )
        figures.append(
            Figure(
                key=f"page_{label}:{path}",
                label=f"`{path}` server time p95 at {label}",
                unit="ms",
                value=b,
                reference=a,
                reference_label="the same page at 1x",
                target=f"{label} / 1x <= {limit:g}",
                met=b / a <= limit,
                runs=ten[path]["p95_rounds"],
            )
        )
    return figures


if __name__ == "__main__":
    main()
