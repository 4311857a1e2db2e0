"""The embedded PostgreSQL: start, attach, recover. Each test owns a scratch data folder."""

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

from witchcraft.platform import embedded_db

ROOT = Path(__file__).resolve().parents[2]
ATTACH = (
    "from witchcraft.platform import embedded_db;"
    " print(embedded_db.ensure_running().pid, flush=True)"
)


@pytest.fixture
def scratch(monkeypatch):
    """Point the embedded server at a folder of this test's own; stop it afterwards.

    Not under pytest's tmp_path: as root the server runs as another user, who must reach the
    folder, and every pytest session resets its own base folder to mode 0700 (a parallel run
    would lock the server out of its data).
    """
    base = Path(tempfile.mkdtemp(prefix="wc-embedded-test-"))
    folder = base / "wc"
    monkeypatch.setenv("WITCHCRAFT_DATA_DIR", str(folder))
    yield folder
    embedded_db.stop()
    shutil.rmtree(base, ignore_errors=True)


def _child_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["WITCHCRAFT_DATA_DIR"] = str(folder)
    return env


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not exit")


def _query(info: embedded_db.ServerInfo, sql: str):
    with psycopg.connect(info.url()) as conn:
        return conn.execute(sql).fetchone()[0]


def test_start_initialises_creates_the_database_and_reattaches(scratch):
    info = embedded_db.ensure_running()
    assert (scratch / "pgdata" / "PG_VERSION").read_text().strip() == "18"
    assert _query(info, "SELECT current_database()") == "witchcraft"
    assert _query(info, "SHOW server_version_num").startswith("18")
    # A second attach finds the same server rather than starting another.
    assert embedded_db.ensure_running().pid == info.pid


def test_socket_directory_is_read_from_the_server(scratch):
    info = embedded_db.ensure_running()
    pidfile_socket = (scratch / "pgdata" / "postmaster.pid").read_text().splitlines()[4]
    assert info.socket_dir == Path(pidfile_socket)
    assert (info.socket_dir / f".s.PGSQL.{info.port}").is_socket()


def test_comes_back_after_the_postmaster_was_killed_with_9(scratch):
    first = embedded_db.ensure_running()
    os.kill(first.pid, signal.SIGKILL)
    _wait_gone(first.pid)
    assert embedded_db.running() is None
    second = embedded_db.ensure_running()
    assert second.pid != first.pid
    assert _query(second, "SELECT 1") == 1


def test_a_stale_pidfile_naming_a_live_unrelated_process_is_ignored(scratch):
    info = embedded_db.ensure_running()
    pidfile = scratch / "pgdata" / "postmaster.pid"
    saved = pidfile.read_text().splitlines()
    assert embedded_db.stop()
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        pidfile.write_text("\n".join([str(unrelated.pid), *saved[1:]]) + "\n")
        restarted = embedded_db.ensure_running()
        assert restarted.pid not in (unrelated.pid, info.pid)
        assert _query(restarted, "SELECT 1") == 1
        assert unrelated.poll() is None  # the unrelated process was left alone
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_killed_python_process_leaves_a_server_the_next_one_attaches_to(scratch):
    holder = subprocess.Popen(
        [sys.executable, "-c", ATTACH + "; import time; time.sleep(60)"],
        cwd=ROOT,
        env=_child_env(scratch),
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = int(holder.stdout.readline())
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert embedded_db.ensure_running().pid == pid


def test_two_processes_attaching_at_once_share_one_server(scratch):
    children = [
        subprocess.Popen(
            [sys.executable, "-c", ATTACH],
            cwd=ROOT,
            env=_child_env(scratch),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0], results
    pids = {out.strip() for out, _ in results}
    assert len(pids) == 1
    assert embedded_db.running().pid == int(pids.pop())


def test_db_command_status_url_psql_and_stop(scratch):
    env = _child_env(scratch)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "db", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert "stopped" in manage("status").stdout
    assert "running" in manage("start").stdout
    assert "running" in manage("status").stdout
    url = manage("url").stdout.strip()
    psql = subprocess.run(
        [str(embedded_db.bin_dir() / "psql"), url, "-Atc", "SELECT current_database()"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert psql.stdout.strip() == "witchcraft"
    dbshell = subprocess.run(
        [sys.executable, "manage.py", "dbshell", "--", "-Atc", "SHOW server_version_num"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert dbshell.stdout.strip().startswith("18")  # the embedded server, not another one
    assert "stopped" in manage("stop").stdout
    assert "stopped" in manage("status").stdout


def test_pg_stat_statements_is_preloaded_only_where_the_build_has_it(tmp_path):
    """A module missing from the build would keep the server from starting (the wheel's
    PostgreSQL 18 lacks it; Debian's has it)."""
    socket_dir = Path("/tmp/sockets")
    assert embedded_db.server_options(socket_dir, libraries=tmp_path) == f"-h '' -k {socket_dir}"
    (tmp_path / "pg_stat_statements.so").write_bytes(b"")
    assert embedded_db.server_options(socket_dir, libraries=tmp_path) == (
        f"-h '' -k {socket_dir} -c shared_preload_libraries=pg_stat_statements"
    )


def test_the_started_server_preloads_pg_stat_statements_when_it_can(scratch):
    info = embedded_db.ensure_running()
    has_module = (embedded_db.pkglib_dir() / "pg_stat_statements.so").exists()
    preloaded = _query(info, "SHOW shared_preload_libraries")
    assert ("pg_stat_statements" in preloaded) == has_module


def test_a_start_on_a_folder_with_a_live_server_keeps_its_socket_and_pidfile(scratch):
    """Whatever the pidfile says (missing, half-written while the server writes it), a start
    asked for while a postmaster runs on the folder attaches to it: it never removes the
    server's pidfile or socket, which would cut every client off the running server."""
    info = embedded_db.ensure_running()
    socket = info.socket_dir / f".s.PGSQL.{info.port}"
    pidfile = scratch / "pgdata" / "postmaster.pid"
    saved = pidfile.read_text()
    for damaged in (saved.splitlines(keepends=True)[0], saved):
        pidfile.write_text(damaged)
        with embedded_db._lock():
            if damaged != saved:
                threading.Timer(1.0, pidfile.write_text, [saved]).start()
            assert embedded_db._start().pid == info.pid
        assert socket.is_socket()
        assert pidfile.read_text() == saved
        assert _query(info, "SELECT 1") == 1


def test_the_socket_folder_is_chosen_by_length_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    short = tmp_path / "pgdata"
    short.mkdir()
    (short / ".s.PGSQL.5432").write_text("a live server's socket")
    assert embedded_db.socket_dir_for(short) == short
    assert (short / ".s.PGSQL.5432").exists()  # looked at, not bound or removed
    deep = tmp_path / ("d" * 100) / "pgdata"
    deep.mkdir(parents=True)
    folder = embedded_db.socket_dir_for(deep)
    assert folder.parent == tmp_path / "run" and folder.is_dir()
    assert folder == embedded_db.socket_dir_for(deep)  # the same folder every time
