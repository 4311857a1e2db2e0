"""Point-in-time recovery at the 10x data set: ``python -m bench.pitr`` (``--users``/``--days``
for another size). Writes ``bench/results/pitr.json`` and ``pitr.md``.

On an embedded PostgreSQL of its own (a new ``WITCHCRAFT_DATA_DIR`` under ``.witchcraft/bench``;
the development data is never touched), run the way an operator runs it, through ``manage.py``:

1. migrate and load ``seed_demo --users 10000 --days 30`` (10x: about 5 million usage rows);
2. ``backup --archive`` (the WAL receiver and the first base backup), then ``backup --base``
   timed: the base backup figure;
3. the WAL written by 10,000 recorded requests: ``record_ai_usage`` as the API's transaction runs
   it (``bench/sql/record_usage.pgbench``, 8 connections), the server's WAL position before and
   after; once right after a checkpoint (every page touched is written whole once) and once
   after that (steady state);
4. the time T noted, 10,000 more requests recorded, then ``restore --to-time T`` timed and the
   copy's usage rows compared with the count at T; then ``restore --to-latest`` timed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.harness import PYTHON, RESULTS, ROOT, WORK, log, write_json

SQL = ROOT / "bench" / "sql"
REQUESTS = 10_000


class Server:
    """The benchmark's own embedded server, driven through manage.py."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGHOST")},
            "WITCHCRAFT_DATA_DIR": str(data),
            "DJANGO_SETTINGS_MODULE": "witchcraft.settings",
            "PITR_ENABLED": "true",
        }

    def manage(self, *args: str) -> tuple[str, float]:
        started = time.perf_counter()
        done = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"bench: manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return done.stdout, seconds

    def where(self, directory: Path | None = None) -> dict:
        lines = ((directory or self.data / "pgdata") / "postmaster.pid").read_text().splitlines()
        return {"host": lines[4], "port": int(lines[3]), "user": "postgres", "dbname": "witchcraft"}

    def connect(self, directory: Path | None = None) -> psycopg.Connection:
        return psycopg.connect(**self.where(directory), autocommit=True)

    def url(self) -> str:
        where = self.where()
        return f"postgresql://postgres@/witchcraft?host={where['host']}&port={where['port']}"

    def bin(self, name: str) -> str:
        from witchcraft.platform import embedded_db

        return str(embedded_db.bin_dir() / name)

    def record(self, count: int) -> None:
        """``count`` requests recorded through record_ai_usage, 8 connections (pgbench)."""
        with self.connect() as conn:
            low, high = conn.execute(
                "SELECT min(id), max(id) FROM users WHERE email LIKE 'demo-%%@example.com'"
            ).fetchone()
        per_client = count // 8
        done = subprocess.run(
            [
                self.bin("pgbench"),
                "-n",
                "-M",
                "prepared",
                "-c",
                "8",
                "-j",
                "2",
                "-t",
                str(per_client),
                "-D",
                f"uid_min={low}",
                "-D",
                f"uid_max={high}",
                "-f",
                str(SQL / "record_usage.pgbench"),
                self.url(),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode or "aborted" in done.stdout + done.stderr:
            raise SystemExit(f"bench: pgbench failed:\n{(done.stdout + done.stderr)[-2000:]}")

    def wal_bytes(self, work) -> int:
        with self.connect() as conn:
            (before,) = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        work()
        with self.connect() as conn:
            return conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint", [before]
            ).fetchone()[0]

    def stop_copy(self, directory: Path) -> None:
        runner = ["runuser", "-u", "pgserver", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*runner, self.bin("pg_ctl"), "-D", str(directory), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )


def _usage_rows(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM ai_usage_requests").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pitr")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()

    data = WORK / "pitr"
    if data.exists():
        Server(data).manage("db", "stop")
        shutil.rmtree(data)
    data.mkdir(parents=True)
    server = Server(data)
    results: dict = {"users": args.users, "days": args.days, "measured_at": str(datetime.now(UTC))}
    try:
        server.manage("db", "start")
        server.manage("migrate", "--noinput", "-v0")
        log(f"loading {args.users:,} users x {args.days} days")
        _, results["load_seconds"] = server.manage(
            "seed_demo", "--users", str(args.users), "--days", str(args.days), "--force"
        )
        with server.connect() as conn:
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
            results["database_bytes"] = conn.execute(
                "SELECT pg_database_size('witchcraft')"
            ).fetchone()[0]
            results["usage_rows"] = _usage_rows(conn)
        log(f"loaded in {results['load_seconds']:.0f} s; first base backup")
        _, results["first_archive_seconds"] = server.manage("backup", "--archive")
        out, results["base_backup_seconds"] = server.manage("backup", "--base")
        results["base_backup"] = out.strip()
        log(f"base backup: {results['base_backup_seconds']:.1f} s")

        with server.connect() as conn:
            conn.execute("CHECKPOINT")
        results["wal_bytes_per_10000_after_checkpoint"] = server.wal_bytes(
            lambda: server.record(REQUESTS)
        )
        results["wal_bytes_per_10000_steady"] = server.wal_bytes(lambda: server.record(REQUESTS))
        log(
            f"WAL per {REQUESTS:,}: {results['wal_bytes_per_10000_after_checkpoint']:,} B after a "
            f"checkpoint, {results['wal_bytes_per_10000_steady']:,} B steady"
        )

        with server.connect() as conn:
            (moment,) = conn.execute("SELECT clock_timestamp()").fetchone()
            rows_at_moment = _usage_rows(conn)
        server.record(REQUESTS)
        server.manage("backup", "--archive")
        at_time = data / "restores" / "at-time"
        out, results["restore_to_time_seconds"] = server.manage(
            "restore", "--to-time", moment.isoformat(), "--into", str(at_time)
        )
        results["restore_to_time"] = out.strip().splitlines()[:5]
        with server.connect(at_time) as copy:
            results["restored_rows_match"] = _usage_rows(copy) == rows_at_moment
        server.stop_copy(at_time)
        shutil.rmtree(at_time, ignore_errors=True)
        log(
            f"restore to a time: {results['restore_to_time_seconds']:.1f} s, rows match: "
            f"{results['restored_rows_match']}"
        )
        latest = data / "restores" / "latest"
        _, results["restore_to_latest_seconds"] = server.manage(
            "restore", "--to-latest", "--into", str(latest)
        )
        with server.connect(latest) as copy, server.connect() as source:
            results["latest_rows_match"] = _usage_rows(copy) == _usage_rows(source)
        server.stop_copy(latest)
        log(f"restore to the latest: {results['restore_to_latest_seconds']:.1f} s")
    finally:
        subprocess.run(
            [PYTHON, "manage.py", "db", "stop"], cwd=ROOT, env=server.env, capture_output=True
        )
    write_json(RESULTS / "pitr.json", results)
    (RESULTS / "pitr.md").write_text(report(results))
    log(f"wrote {RESULTS / 'pitr.md'}")


def report(r: dict) -> str:
    mib = 1024 * 1024
    return "\n".join(
        [
            f"# Point-in-time recovery at {r['users']:,} users x {r['days']} days",
            "",
            f"Measured {r['measured_at'][:19]} UTC by `python -m bench.pitr` (bench/pitr.py) on "
            "the embedded PostgreSQL 18, 2 cores.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| database size | {r['database_bytes'] / mib:,.0f} MiB "
            f"({r['usage_rows']:,} usage rows) |",
            f"| base backup (`manage.py backup --base`, whole command) | "
            f"{r['base_backup_seconds']:.1f} s |",
            f"| WAL per 10,000 recorded requests, right after a checkpoint | "
            f"{r['wal_bytes_per_10000_after_checkpoint'] / mib:.1f} MiB |",
            f"| WAL per 10,000 recorded requests, steady state | "
            f"{r['wal_bytes_per_10000_steady'] / mib:.1f} MiB |",
            f"| restore to a time (`manage.py restore --to-time`, whole command) | "
            f"{r['restore_to_time_seconds']:.1f} s (rows as at T: {r['restored_rows_match']}) |",
            f"| restore to the latest (`--to-latest`) | {r['restore_to_latest_seconds']:.1f} s "
            f"(nothing lost: {r['latest_rows_match']}) |",
            "",
        ]
    )


if __name__ == "__main__":
    main()
