"""Point-in-time recovery for real: Barman streaming the WAL of an embedded PostgreSQL of this
test's own and taking its base backups, ``manage.py restore --to-time`` / ``--to-latest`` into new
folders and ports, the restore drill, retention by age over backdated backups, and the figures
the monitoring page reads, all through ``manage.py`` as an operator runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg
import pytest

from witchcraft.operations.pitr import manifest
from witchcraft.operations.pitr.barman import read_backup_info
from witchcraft.testing.servers import (
    DebianPostgres,
    OwnPostgres,
    clean_env,
    debian_server_bin,
    free_port,
)


@pytest.fixture(scope="module")
def pg():
    """A migrated embedded server of this module's own, with WAL streaming and a base backup."""
    # Not under pytest's folder: pytest makes its root private (0700) again on each run.
    data = Path(tempfile.mkdtemp(prefix="witchcraft-pitr-"))
    server = OwnPostgres(data)
    server.start()
    migrated = server.manage("migrate", "--noinput", "-v0", timeout=300)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    first = server.manage("backup", "--archive", timeout=600)  # starts the receiver, 1st backup
    assert first.returncode == 0, first.stdout + first.stderr
    yield server
    server.manage("db", "stop")
    shutil.rmtree(data, ignore_errors=True)


def _connect(pg: OwnPostgres, **where) -> psycopg.Connection:
    info = pg.info()
    params = {"host": str(info.socket_dir), "port": info.port, "dbname": "witchcraft"}
    return psycopg.connect(user="postgres", autocommit=True, **(params | where))


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _restored(directory: Path) -> psycopg.Connection:
    lines = (directory / "postmaster.pid").read_text().splitlines()
    return psycopg.connect(
        host=lines[4], port=int(lines[3]), user="postgres", dbname="witchcraft", autocommit=True
    )


def _stop(pg: OwnPostgres, directory: Path) -> None:
    command = ["runuser", "-u", "pgserver", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*command, pg.tool("pg_ctl"), "-D", str(directory), "-m", "fast", "-w", "stop"],
        capture_output=True,
        timeout=60,
        check=False,
    )


def _runs(pg: OwnPostgres, job: str) -> list[tuple[str, dict, str]]:
    with _connect(pg) as conn:
        return conn.execute(
            "SELECT status, summary, error FROM maintenance_runs WHERE job = %s ORDER BY id",
            [job],
        ).fetchall()


def test_a_restore_to_a_time_has_exactly_its_rows_and_to_the_latest_loses_nothing(pg):
    with _connect(pg) as conn:
        conn.execute("CREATE TABLE probe (id integer PRIMARY KEY, note text)")
        conn.execute("INSERT INTO probe SELECT n, 'before' FROM generate_series(1, 100) n")
        (moment,) = conn.execute("SELECT clock_timestamp()").fetchone()
        conn.execute("INSERT INTO probe SELECT n, 'after' FROM generate_series(101, 150) n")
        conn.execute("DELETE FROM probe WHERE id <= 10")
        conn.execute("UPDATE probe SET note = 'changed' WHERE id = 50")
    at_time, latest = pg.data / "restores" / "at-time", pg.data / "restores" / "latest"

    out = _ok(
        pg.manage(
            "restore",
            "--to-time",
            moment.isoformat(),
            "--into",
            str(at_time),
            "--port",
            str(free_port()),
            timeout=600,
        )
    )
    assert "verified" in out and "To switch over:" in out
    try:
        with _restored(at_time) as copy:
            rows = copy.execute("SELECT id, note FROM probe ORDER BY id").fetchall()
            assert rows == [(n, "before") for n in range(1, 101)]
            assert not copy.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # promoted
    finally:
        _stop(pg, at_time)

    out = _ok(pg.manage("restore", "--to-latest", "--into", str(latest), timeout=600))
    assert "every WAL record the server had written" in out
    try:
        with _restored(latest) as copy:
            rows = dict(copy.execute("SELECT id, note FROM probe").fetchall())
        assert sorted(rows) == list(range(11, 151))
        assert rows[50] == "changed" and rows[150] == "after"
    finally:
        _stop(pg, latest)
    with _connect(pg) as conn:  # the running server was not touched
        assert conn.execute("SELECT count(*) FROM probe").fetchone()[0] == 140


def test_a_restore_is_refused_before_anything_is_written(pg):
    cases = [
        (["--to-time", "yesterday"], "is not a time"),
        (["--to-time", "2026-12-07 14:04:59"], "has no time zone"),
        (["--to-time", "2000-01-01 00:00:00+00"], "before the oldest restorable time"),
        (["--to-latest", "--into", str(pg.data / "pgdata")], "never overwrites"),
        (["--to-latest", "--port", "80"], "--port must be between"),
        (["--to-latest", "backup.dump"], "take no FILE"),
    ]
    before = sorted((pg.data / "restores").glob("*")) if (pg.data / "restores").exists() else []
    for args, message in cases:
        done = pg.manage("restore", *args, timeout=120)
        assert done.returncode == 1, args
        assert message in done.stderr, (args, done.stderr)
    after = sorted((pg.data / "restores").glob("*")) if (pg.data / "restores").exists() else []
    assert after == before


def test_the_drill_restores_the_latest_point_verifies_it_and_removes_it(pg):
    out = _ok(pg.manage("backup", "--drill", timeout=600))
    assert out.startswith("backup_drill: verified True")
    status, summary, error = _runs(pg, "backup_drill")[-1]
    assert (status, error) == ("succeeded", "")
    assert summary["tables"] > 40 and summary["manifest_files"] > 100
    assert set(summary["critical"]) == {
        "users",
        "user_subscriptions",
        "payment_history",
        "ai_usage_monthly",
    }
    assert not any((pg.data / "drills").iterdir())  # the scratch copy is gone


def test_retention_keeps_the_recovery_window_with_a_floor_on_the_count(pg):
    for _ in range(2):
        _ok(pg.manage("backup", "--base", timeout=600))
    meta = pg.data / "pitr" / "witchcraft" / "meta"
    infos = sorted(meta.glob("*-backup.info"))
    assert len(infos) >= 3
    oldest, older = infos[0], infos[1]
    now = datetime.now(UTC)
    for path, days in ((oldest, 10), (older, 9)):  # backdated, as if taken days ago
        text = path.read_text()
        info = read_backup_info(path)
        for key in ("begin_time", "end_time"):
            moment = datetime.fromisoformat(info[key]) - timedelta(days=days)
            text = text.replace(f"{key}={info[key]}", f"{key}={moment.isoformat(sep=' ')}")
        path.write_text(text)
    older_end = datetime.fromisoformat(read_backup_info(older)["end_time"])
    backups = len(infos)

    # A floor of every backup there is: nothing goes, however old.
    _ok(
        pg.manage(
            "backup",
            "--archive",
            env=clean_env(WITCHCRAFT_DATA_DIR=str(pg.data), PITR_MIN_BACKUPS=str(backups)),
        )
    )
    assert oldest.exists() and older.exists()

    # The default floor (2): the 10-day-old backup goes; the 9-day-old one stays, since a
    # restore to 7 days ago starts from it.
    _ok(pg.manage("backup", "--archive"))
    assert not oldest.exists() and older.exists()
    assert not (meta.parent / "base" / oldest.name.removesuffix("-backup.info")).exists()

    # What the monitoring page reads: the recovery window from the oldest kept backup to now.
    status, summary, _ = _runs(pg, "backup_wal")[-1]
    assert status == "succeeded" and summary["backups"] == backups - 1
    assert datetime.fromisoformat(summary["oldest_restorable"]) == older_end
    assert summary["receiver"] == "streaming" and summary["last_wal"]
    through = datetime.fromisoformat(summary["safe_through"])
    assert now - timedelta(minutes=1) < through <= datetime.now(UTC)
    out = _ok(pg.manage("backup", "--status"))
    assert out.splitlines()[0] == "backups: ok"
    assert f"recovery window: {older_end:%Y-%m-%d %H:%M:%S} UTC" in out
    assert "backup_drill:" in out and "succeeded" in out


def test_a_receiver_that_died_is_started_again_by_the_next_check(pg):
    receivers = [p for p in psutil.process_iter(["name", "cmdline"]) if _receives(p, pg)]
    assert receivers, "no pg_receivewal streams this server's WAL"
    for process in receivers:
        process.kill()
    psutil.wait_procs(receivers, timeout=10)
    with _connect(pg) as conn:
        conn.execute("CREATE TABLE while_down AS SELECT n FROM generate_series(1, 10) n")
    deadline = time.monotonic() + 60
    while True:  # the slot kept the WAL; Barman's cron starts a new receiver
        _ok(pg.manage("backup", "--archive"))
        status, summary, _ = _runs(pg, "backup_wal")[-1]
        if summary["receiver"] == "streaming" or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert status == "succeeded" and summary["receiver"] == "streaming"
    assert any(_receives(p, pg) for p in psutil.process_iter(["name", "cmdline"]))


def _receives(process: psutil.Process, pg: OwnPostgres) -> bool:
    cmdline = process.info.get("cmdline") or []
    return process.info.get("name") == "pg_receivewal" and any(
        str(pg.data) in part for part in cmdline
    )


def test_a_failed_run_is_recorded_with_its_one_line_reason(pg):
    blocked = pg.data / "not-a-folder"
    blocked.write_text("a file where the backups should go")
    done = pg.manage(
        "backup", "--base", env=clean_env(WITCHCRAFT_DATA_DIR=str(pg.data), PITR_DIR=str(blocked))
    )
    assert done.returncode == 1 and "backup_base" in done.stderr
    status, _, error = _runs(pg, "backup_base")[-1]
    assert status == "failed" and "not-a-folder" in error and "\n" not in error
    with _connect(pg) as conn:
        (details,) = conn.execute(
            "SELECT details FROM audit_logs WHERE event_type = 'maintenance_run'"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert details["job"] == "backup_base" and details["status"] == "failed"


def test_a_base_backup_that_differs_from_its_manifest_is_found_out(pg):
    base = sorted((pg.data / "pitr" / "witchcraft" / "base").iterdir())[-1] / "data"
    copy = pg.data / "manifest-check"
    shutil.copytree(base, copy)
    assert manifest.verify(copy).ok and manifest.verify(copy).files > 100
    page = copy / "global" / "pg_control"
    raw = bytearray(page.read_bytes())
    raw[100] ^= 0xFF  # one byte changed, the size kept
    page.write_bytes(bytes(raw))
    (copy / "PG_VERSION").unlink()
    problems = manifest.verify(copy).problems
    assert sorted(problems) == [
        "PG_VERSION: missing",
        "global/pg_control: its CRC32C checksum differs from the manifest's",
    ]
    (copy / "backup_manifest").write_text(
        (copy / "backup_manifest").read_text().replace("1", "2", 1)
    )
    assert (
        "backup_manifest's own checksum does not match its contents"
        in manifest.verify(copy).problems
    )
    shutil.rmtree(copy)


def test_a_database_url_server_that_grants_replication_is_restored_to_a_time_too():
    """The machine's PostgreSQL (Debian's, 15 here) through DATABASE_URL, with PITR_ENABLED:
    its own programs take the backup, stream the WAL and run the restored copy."""
    try:
        bin_dir = debian_server_bin()
    except LookupError as exc:
        pytest.fail(f"this test needs the machine's PostgreSQL server: {exc}")
    data = Path(tempfile.mkdtemp(prefix="witchcraft-pitr-url-"))
    server = DebianPostgres(data, bin_dir=bin_dir)
    server.env |= {"PITR_ENABLED": "true", "WITCHCRAFT_DATA_DIR": str(data)}
    copy = data / "restored"
    try:
        server.start()
        _ok(server.manage("migrate", "--noinput", "-v0", timeout=300))
        _ok(server.manage("backup", "--archive", timeout=600))
        info = server.info()
        where = {"host": str(info.socket_dir), "port": info.port, "dbname": "witchcraft"}
        with psycopg.connect(user="postgres", autocommit=True, **where) as conn:
            conn.execute("CREATE TABLE probe AS SELECT n FROM generate_series(1, 10) n")
            (moment,) = conn.execute("SELECT clock_timestamp()").fetchone()
            conn.execute("DROP TABLE probe")  # the mistake
        out = _ok(server.manage("restore", "--to-time", moment.isoformat(), "--into", str(copy)))
        assert f"path_prefix = {bin_dir}" in (data / "barman" / "barman.conf").read_text()
        assert "verified" in out
        try:
            with _restored(copy) as restored:
                assert restored.execute("SELECT count(*) FROM probe").fetchone()[0] == 10
                (version,) = restored.execute("SHOW server_version_num").fetchone()
                assert int(version) // 10000 == int(bin_dir.parent.name)
        finally:
            command = ["runuser", "-u", "pgserver", "--"] if os.geteuid() == 0 else []
            subprocess.run(
                [*command, str(bin_dir / "pg_ctl"), "-D", str(copy), "-m", "fast", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_a_slot_lost_while_the_receiver_was_away_is_replaced_with_a_new_base_backup(pg):
    with _connect(pg, dbname="postgres") as conn:
        assert conn.execute("SHOW max_slot_wal_keep_size").fetchone()[0] == "16GB"
        conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        conn.execute("SELECT pg_reload_conf()")
    try:
        receivers = [p for p in psutil.process_iter(["name", "cmdline"]) if _receives(p, pg)]
        for process in receivers:
            process.kill()
        psutil.wait_procs(receivers, timeout=10)
        with _connect(pg) as conn:  # the server moves on: 3 segments, then a checkpoint
            for _ in range(3):
                conn.execute("CREATE TABLE filler AS SELECT n FROM generate_series(1, 100) n")
                conn.execute("DROP TABLE filler")
                conn.execute("SELECT pg_switch_wal()")
            conn.execute("CHECKPOINT")
            (status,) = conn.execute(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'witchcraft_barman'"
            ).fetchone()
        assert status == "lost"
        before = len(_runs(pg, "backup_base"))
        with _connect(pg, dbname="postgres") as conn:  # room again for the new slot
            conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '16GB'")
            conn.execute("SELECT pg_reload_conf()")

        _ok(pg.manage("backup", "--archive", timeout=600))

        status, summary, _ = _runs(pg, "backup_wal")[-1]
        assert status == "succeeded" and summary["slot_lost"] is True
        assert summary["first_base_backup"]  # a new start for restores after the gap
        assert len(_runs(pg, "backup_base")) == before + 1
        with _connect(pg) as conn:
            (status,) = conn.execute(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'witchcraft_barman'"
            ).fetchone()
        assert status in ("reserved", "extended")
    finally:
        with _connect(pg, dbname="postgres") as conn:
            conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '16GB'")
            conn.execute("SELECT pg_reload_conf()")
