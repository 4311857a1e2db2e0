"""Figures measured in the database with pgbench: record_ai_usage and check_and_consume_quota,
each against its minimal reference (bench/sql/reference.sql), and COPY's rate for the batch
figure's reference.

Each pgbench transaction is what the API's transaction does around the call: the runtime role,
the caller's identity (set_config), the call, the commit, sent as one pipeline, prepared. The
function and its reference run the same script shape, interleaved run by run, so drift of the
machine hits both.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
import uuid
from pathlib import Path

import psycopg

from bench.harness import WORK, BenchDatabase, Figure, log, median, percentile

SQL = Path(__file__).resolve().parent / "sql"


class Pgbench:
    def __init__(self, db: BenchDatabase, program: str):
        self.db = db
        self.program = program
        with db.connect() as conn:
            low, high, count = conn.execute(
                "SELECT min(id), max(id), count(*) FROM public.users "
                "WHERE email LIKE 'demo-%%@example.com'"
            ).fetchone()
        if not count or high - low + 1 != count:
            raise SystemExit("bench: the demo users' ids are not contiguous; reload the data")
        self.uid_min, self.uid_max = low, high

    def run(self, script: str, *, seconds: float, clients: int, latencies: bool = False) -> dict:
        """One pgbench run; its transactions per second and, when asked, every latency (ms).
        Each run starts right after a checkpoint: a run writes hundreds of megabytes of WAL,
        and one that met a checkpoint (and the full-page writes after it) where the previous
        run did not would measure the checkpoint, not the function."""
        with self.db.connect() as conn, contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")
        prefix = WORK / f"pgbench-{script}-{uuid.uuid4().hex[:8]}"
        args = [
            self.program,
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(max(1, round(seconds))),
            "-D",
            f"uid_min={self.uid_min}",
            "-D",
            f"uid_max={self.uid_max}",
            "-f",
            str(SQL / f"{script}.pgbench"),
        ]
        if latencies:
            args += ["-l", f"--log-prefix={prefix}"]
        args.append(self.db.url)
        done = subprocess.run(args, capture_output=True, text=True)
        out = done.stdout + done.stderr
        if done.returncode or "aborted" in out:
            raise SystemExit(f"bench: pgbench {script} failed:\n{out[-2000:]}")
        failed = re.search(r"number of failed transactions: (\d+)", out)
        if failed and int(failed[1]):
            raise SystemExit(f"bench: pgbench {script}: {failed[1]} failed transactions:\n{out}")
        tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)[1])
        result = {"tps": tps, "transactions": int(re.search(r"processed: (\d+)", out)[1])}
        if latencies:
            values = []
            for path in WORK.glob(f"{prefix.name}*"):
                for line in path.read_text().splitlines():
                    fields = line.split()
                    values.append(int(fields[2]) / 1000)  # microseconds -> ms
                path.unlink()
            result["p50"] = percentile(values, 50)
            result["p99"] = percentile(values, 99)
        return result


def keep_loaded_quotas(db: BenchDatabase) -> None:
    """Remember every quota's use as the data set was loaded (bench.loaded_quotas)."""
    with db.connect() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench.loaded_quotas AS"
            " SELECT user_id, tokens_used, cost_used FROM public.user_quotas"
        )


def restore_loaded_quotas(db: BenchDatabase) -> None:
    """Every quota back to its use as loaded: each run starts from the data set's state (about
    one user in nine at or above 80 % of a limit), not from what earlier runs booked (which
    left most users above 80 %, where every call also checks the alerts)."""
    with db.connect() as conn:
        conn.execute(
            "UPDATE public.user_quotas q SET tokens_used = l.tokens_used, cost_used = l.cost_used"
            " FROM bench.loaded_quotas l WHERE l.user_id = q.user_id"
        )


def record_usage(bench: Pgbench, *, seconds: float, runs: int) -> Figure:
    """record_ai_usage calls/s at 8 connections vs the minimal four writes."""
    real, ref = [], []
    keep_loaded_quotas(bench.db)
    for run in range(runs):
        restore_loaded_quotas(bench.db)
        ref.append(bench.run("record_minimal", seconds=seconds, clients=8)["tps"])
        restore_loaded_quotas(bench.db)
        real.append(bench.run("record_usage", seconds=seconds, clients=8)["tps"])
        log(f"record_ai_usage run {run + 1}/{runs}: {real[-1]:,.0f}/s, reference {ref[-1]:,.0f}/s")
    value, reference = median(real), median(ref)
    return Figure(
        key="record_ai_usage_per_s",
        label="`record_ai_usage` calls/s, 8 connections (pgbench)",
        unit="calls/s",
        value=value,
        reference=reference,
        reference_label="minimal function: the seed's four writes "
        "(usage row + key, two upserts, quota update)",
        target=">= 0.8 x reference and >= 5,000/s",
        met=value >= 0.8 * reference and value >= 5000,
        runs=real,
        reference_runs=ref,
    )


def _reset_quotas(db: BenchDatabase) -> int:
    """Every demo user's quota unused, so every reservation of a run is granted; returns the
    tokens used in all (0)."""
    with db.connect() as conn:
        conn.execute(
            "UPDATE public.user_quotas q SET tokens_used = 0, cost_used = 0 FROM public.users u "
            "WHERE u.id = q.user_id AND u.email LIKE 'demo-%%@example.com'"
        )
    return 0


def _reserved(db: BenchDatabase) -> int:
    return int(
        db.scalar(
            "SELECT coalesce(sum(q.tokens_used), 0) FROM public.user_quotas q JOIN public.users u "
            "ON u.id = q.user_id WHERE u.email LIKE 'demo-%%@example.com'"
        )
    )


def quota_consume(bench: Pgbench, *, seconds: float, runs: int, clients: int = 8) -> dict:
    """check_and_consume_quota and the bare UPDATE: p50 / p99 latency (ms) per run. Every
    reservation of the function's runs must have been granted (checked from the quota rows:
    a refusal would be a cheaper path and flatter the figure)."""
    out = {"real_p50": [], "real_p99": [], "ref_p50": [], "ref_p99": [], "real_tps": []}
    for run in range(runs):
        _reset_quotas(bench.db)
        ref = bench.run("quota_minimal", seconds=seconds, clients=clients, latencies=True)
        _reset_quotas(bench.db)
        real = bench.run("quota_consume", seconds=seconds, clients=clients, latencies=True)
        granted = _reserved(bench.db) // 100
        if granted != real["transactions"]:
            raise SystemExit(f"bench: {real['transactions'] - granted} reservations were refused")
        out["real_p50"].append(real["p50"])
        out["real_p99"].append(real["p99"])
        out["real_tps"].append(real["tps"])
        out["ref_p50"].append(ref["p50"])
        out["ref_p99"].append(ref["p99"])
        log(
            f"check_and_consume_quota run {run + 1}/{runs} ({clients} connections): "
            f"p50 {real['p50']:.2f} ms p99 {real['p99']:.2f} ms; "
            f"reference p50 {ref['p50']:.2f} ms p99 {ref['p99']:.2f} ms"
        )
    _reset_quotas(bench.db)
    return out


def quota_figures(bench: Pgbench, *, seconds: float, runs: int) -> tuple[Figure, Figure]:
    data = quota_consume(bench, seconds=seconds, runs=runs)
    p50 = Figure(
        key="check_and_consume_quota_p50_ms",
        label="`check_and_consume_quota` p50 in the database, 8 connections",
        unit="ms",
        value=median(data["real_p50"]),
        reference=median(data["ref_p50"]),
        reference_label="the minimal quota UPDATE, same transaction",
        target="(p99 is the target)",
        runs=data["real_p50"],
        reference_runs=data["ref_p50"],
    )
    p99_value = median(data["real_p99"])
    p99 = Figure(
        key="check_and_consume_quota_p99_ms",
        label="`check_and_consume_quota` p99 in the database, 8 connections",
        unit="ms",
        value=p99_value,
        reference=median(data["ref_p99"]),
        reference_label="the minimal quota UPDATE, same transaction",
        target="p99 <= 2 ms",
        met=p99_value <= 2,
        runs=data["real_p99"],
        reference_runs=data["ref_p99"],
        note=f"{median(data['real_tps']):,.0f} calls/s during the runs",
    )
    return p50, p99


def copy_rate(db: BenchDatabase, rows: list[dict], *, repeats: int) -> list[float]:
    """Records/s of COPY of ``rows`` (the batch's records, as record_ai_usage_batch would store
    them) into ai_usage_request_keys (the usage rows' foreign key needs them) and
    ai_usage_requests, one transaction per batch, as the owner: the floor of writing them."""
    rates = []
    with db.connect() as conn:
        conn.autocommit = False
        for _ in range(repeats):
            tag = uuid.uuid4().hex[:12]
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT nextval('public.ai_usage_requests_id_seq') FROM generate_series(1, %s)",
                    [len(rows)],
                ).fetchall()
            ]
            conn.commit()
            started = time.perf_counter()
            with conn.cursor() as cursor:
                with cursor.copy(
                    "COPY public.ai_usage_request_keys (usage_id, user_id, request_id, created_at) "
                    "FROM STDIN"
                ) as copy:
                    for usage_id, row in zip(ids, rows, strict=True):
                        copy.write_row(
                            (
                                usage_id,
                                row["user_id"],
                                f"{tag}-{row['request_id']}",
                                row["created_at"],
                            )
                        )
                with cursor.copy(
                    "COPY public.ai_usage_requests (id, created_at, user_id, provider_id, "
                    "model_id, request_id, input_tokens, output_tokens, total_tokens, cost, "
                    "input_price_per_million, output_price_per_million, "
                    "cached_input_price_per_million, latency_ms, status) FROM STDIN"
                ) as copy:
                    for usage_id, row in zip(ids, rows, strict=True):
                        copy.write_row(
                            (
                                usage_id,
                                row["created_at"],
                                row["user_id"],
                                row["provider_id"],
                                row["model_id"],
                                f"{tag}-{row['request_id']}",
                                row["input_tokens"],
                                row["output_tokens"],
                                row["input_tokens"] + row["output_tokens"],
                                row["cost"],
                                row["prices"][0],
                                row["prices"][1],
                                row["prices"][2],
                                row["latency_ms"],
                                "success",
                            )
                        )
            conn.commit()
            rates.append(len(rows) / (time.perf_counter() - started))
    return rates
