"""The embedded standby: a real primary and a real standby, on a scratch data folder per test."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from witchcraft.platform import embedded_db, embedded_replica

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scratch(monkeypatch):
    """Point both servers at a folder of this test's own; stop them afterwards (the standby
    first). Not under pytest's tmp_path: see test_embedded_db's fixture of the same name."""
    base = Path(tempfile.mkdtemp(prefix="wc-replica-test-"))
    folder = base / "wc"
    monkeypatch.setenv("WITCHCRAFT_DATA_DIR", str(folder))
    yield folder
    try:
        embedded_replica.stop()
    finally:
        embedded_db.stop()
        shutil.rmtree(base, ignore_errors=True)


def _execute(url: str, sql: str, params=()):
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchone() if cursor.description else None


def _write(value: int) -> None:
    url = embedded_db.ensure_running().url()
    _execute(url, "CREATE TABLE IF NOT EXISTS replicated (value int)")
    _execute(url, "INSERT INTO replicated VALUES (%s)", [value])


def _wait_for(check, timeout: float = 10.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(0.1)


def _replayed(value: int, timeout: float = 10.0) -> None:
    """Wait until the standby shows the row ``value`` written on the primary."""

    def seen() -> bool:
        try:
            row = _execute(
                embedded_replica.url(),
                "SELECT count(*) FROM replicated WHERE value = %s",
                [value],
            )
        except psycopg.errors.UndefinedTable:
            return False
        return row[0] > 0

    _wait_for(seen, timeout, f"row {value} on the standby")


def _wait_gone(pid: int) -> None:
    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait_for(gone, what=f"exit of pid {pid}")


def test_start_makes_a_standby_in_recovery_that_replays_the_primary(scratch):
    info = embedded_replica.start()
    assert info.port == 5433
    assert (info.socket_dir / ".s.PGSQL.5433").is_socket()
    assert (scratch / "replica" / "pgdata" / "standby.signal").exists()
    url = embedded_replica.url()
    assert "port=5433" in url
    assert _execute(url, "SELECT pg_is_in_recovery()")[0] is True
    primary = embedded_db.running()
    assert primary is not None and primary.pid != info.pid
    _write(1)
    _replayed(1)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        _execute(url, "INSERT INTO replicated VALUES (2)")


def test_start_twice_attaches_to_the_same_standby(scratch):
    first = embedded_replica.start()
    assert embedded_replica.start().pid == first.pid
    assert embedded_replica.running().pid == first.pid


def test_stopped_then_started_again_the_standby_follows_on(scratch):
    first = embedded_replica.start()
    _write(1)
    _replayed(1)
    assert embedded_replica.stop() is True
    assert embedded_replica.stop() is False
    assert embedded_replica.running() is None
    _write(2)  # while the standby is down: the slot keeps the WAL
    second = embedded_replica.start()
    assert second.pid != first.pid
    _replayed(2)


def test_status_reports_the_lag(scratch):
    assert embedded_replica.status().running is False
    info = embedded_replica.start()
    _write(1)
    _replayed(1)
    caught_up = _wait_for(
        lambda: (s := embedded_replica.status()).lag_bytes == 0 and s, what="zero lag"
    )
    assert caught_up.running and caught_up.pid == info.pid and caught_up.port == 5433
    assert caught_up.in_recovery is True
    assert caught_up.wal_receiver_status == "streaming"
    assert caught_up.replay_lsn is not None and caught_up.receive_lsn is not None
    assert caught_up.lag_seconds is not None

    _execute(embedded_replica.url(), "SELECT pg_wal_replay_pause()")
    _wait_for(
        lambda: (
            _execute(embedded_replica.url(), "SELECT pg_get_wal_replay_pause_state()")[0]
            == "paused"
        ),
        what="replay paused",
    )
    _write(2)
    behind = embedded_replica.status()
    assert behind.lag_bytes > 0
    _execute(embedded_replica.url(), "SELECT pg_wal_replay_resume()")
    _replayed(2)
    _wait_for(lambda: embedded_replica.status().lag_bytes == 0, what="zero lag after resume")


def test_a_standby_of_a_reinitialised_primary_is_refused_until_reset(scratch):
    embedded_replica.start()
    assert embedded_replica.stop()
    assert embedded_db.stop()
    shutil.rmtree(scratch / "pgdata")
    embedded_db.ensure_running()  # a new cluster: another system identifier, no slot
    with pytest.raises(embedded_replica.ReplicaError, match=r"re-initialised.*db replica reset"):
        embedded_replica.start()
    assert embedded_replica.running() is None
    assert embedded_replica.reset() is True
    assert not (scratch / "replica" / "pgdata").exists()
    embedded_replica.start()
    _write(1)
    _replayed(1)


def test_a_standby_whose_slot_is_gone_is_refused(scratch):
    embedded_replica.start()
    assert embedded_replica.stop()
    primary = embedded_db.ensure_running()
    _wait_for(
        lambda: _execute(
            primary.url("postgres"),
            "SELECT NOT active FROM pg_replication_slots WHERE slot_name = %s",
            [embedded_replica.SLOT_NAME],
        )[0],
        what="the slot released",
    )
    _execute(
        primary.url("postgres"),
        "SELECT pg_drop_replication_slot(%s)",
        [embedded_replica.SLOT_NAME],
    )
    with pytest.raises(embedded_replica.ReplicaError, match=r"slot.*missing.*db replica reset"):
        embedded_replica.start()


def test_a_standby_whose_slot_lost_wal_is_refused(scratch):
    """A primary that keeps at most 1 MB of WAL for the slot invalidates it (wal_status
    'lost') once a checkpoint passes segments the stopped standby still needs."""
    embedded_replica.start()
    assert embedded_replica.stop()
    url = embedded_db.ensure_running().url("postgres")
    _execute(url, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
    _execute(url, "SELECT pg_reload_conf()")
    _execute(url, "CREATE TABLE filler (value int)")
    for _ in range(3):
        _execute(url, "INSERT INTO filler SELECT generate_series(1, 1000)")
        _execute(url, "SELECT pg_switch_wal()")
    _execute(url, "CHECKPOINT")
    slot = _execute(
        url,
        "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s",
        [embedded_replica.SLOT_NAME],
    )
    assert slot[0] == "lost"
    with pytest.raises(embedded_replica.ReplicaError, match=r"'lost'.*db replica reset"):
        embedded_replica.start()
    embedded_replica.reset()
    embedded_replica.start()
    _write(1)
    _replayed(1)


def test_reset_drops_the_slot_and_the_next_start_takes_a_fresh_copy(scratch):
    first = embedded_replica.start()
    assert embedded_replica.reset() is True
    assert embedded_replica.running() is None
    slots = _execute(
        embedded_db.running().url("postgres"), "SELECT count(*) FROM pg_replication_slots"
    )
    assert slots[0] == 0
    second = embedded_replica.start()
    assert second.pid != first.pid
    _write(1)
    _replayed(1)


def test_the_db_replica_command_is_refused_with_database_url():
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres"}
    done = subprocess.run(
        [sys.executable, "manage.py", "db", "replica", "start"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "DATABASE_REPLICA_URL" in done.stderr
    assert "DATABASE_URL is set" in done.stderr


def test_db_replica_command_start_status_url_stop(scratch):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["WITCHCRAFT_DATA_DIR"] = str(scratch)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "db", "replica", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "stopped" in manage("status")
    started = manage("start")
    assert "DATABASE_REPLICA_URL=embedded" in started
    assert embedded_replica.url() in started
    status = manage("status")
    assert "running" in status and "in recovery" in status and "replay lag:" in status
    assert manage("url").strip() == embedded_replica.url()
    assert "stopped" in manage("stop")
    assert "was not running" in manage("stop")


def test_comes_back_after_the_standby_postmaster_was_killed_with_9(scratch):
    first = embedded_replica.start()
    _write(1)
    _replayed(1)
    os.kill(first.pid, signal.SIGKILL)
    _wait_gone(first.pid)
    assert embedded_replica.running() is None
    second = embedded_replica.start()
    assert second.pid != first.pid
    _write(2)
    # The primary may take a moment to see the old walsender go (the slot is busy until then):
    # the standby's receiver retries every 5 s.
    _replayed(2, timeout=20)


def test_a_start_while_the_standby_runs_keeps_its_socket_and_pidfile(scratch):
    """A pidfile half-written (as while the server writes it) does not make a start take the
    running standby for dead: it waits for it, and never removes its pidfile or socket."""
    info = embedded_replica.start()
    socket = info.socket_dir / ".s.PGSQL.5433"
    pidfile = scratch / "replica" / "pgdata" / "postmaster.pid"
    saved = pidfile.read_text()
    pidfile.write_text(saved.splitlines(keepends=True)[0])
    threading.Timer(1.0, pidfile.write_text, [saved]).start()
    assert embedded_replica.start().pid == info.pid
    assert socket.is_socket()
    assert pidfile.read_text() == saved
    assert _execute(embedded_replica.url(), "SELECT 1")[0] == 1
