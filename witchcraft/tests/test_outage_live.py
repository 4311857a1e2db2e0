"""The database killed under load, for real: gunicorn (two workers, DEBUG off) and the job worker
run against an embedded PostgreSQL of this test's own, which is killed with -9, started again,
then stopped cleanly and started again, while clients record usage through the API.

Every answer during the outages is a success or the API's JSON 503 with Retry-After; every
acknowledged record is stored; the web server and the worker recover by themselves (the worker
beats its heartbeat again); /healthz never shows the driver's text or the socket path; and
neither log fills with tracebacks.

The web server and the worker reach the server through ``DATABASE_URL`` (its socket), so they
wait for it rather than start it themselves as an embedded set-up would: the outage lasts as
long as this test says.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import psycopg
import pytest
import requests
from django.db import connection

from witchcraft.testing.servers import (
    OwnPostgres,
    copy_test_database,
    free_port,
    start,
    start_gunicorn,
    stop,
    wait_until_answers,
)

# The test database is copied from (pytest-django sets it up only for a session that asks).
pytestmark = pytest.mark.django_db

OUTAGE_SECONDS = 3
CLIENTS = 4
PAUSE = 0.2  # between one client's requests: at most ~20 requests/s, under the plan's limit


@pytest.fixture(scope="module")
def own_postgres(django_db_setup, django_db_blocker):
    """An embedded server holding a copy of the test database (schema, catalog, roles' grants)."""
    # Not under pytest's folder: each pytest run makes its root private again (0700), which
    # would lock the server's own user out of a running server's data.
    data = Path(tempfile.mkdtemp(prefix="witchcraft-outage-"))
    pg = OwnPostgres(data)
    pg.start()
    with django_db_blocker.unblock():
        copy_test_database(pg, connection)
    yield pg
    pg.manage("db", "stop")
    shutil.rmtree(data, ignore_errors=True)


def _member(pg: OwnPostgres, env: dict) -> tuple[int, str]:
    done = pg.manage(
        "shell",
        "-c",
        "from django.db import transaction; from billing import services;"
        " from witchcraft.platform import rls; from witchcraft.testing import factories;"
        " u = factories.api_member(tier='enterprise');"
        " ctx = rls.service_context(); atomic = transaction.atomic(); atomic.__enter__();"
        " ctx.__enter__(); services.subscription_change_tier(user_id=u.pk, tier_slug='enterprise');"
        " ctx.__exit__(None, None, None); atomic.__exit__(None, None, None);"
        " print(u.pk, u.token)",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    user_id, token = done.stdout.strip().splitlines()[-1].split()
    return int(user_id), token


@pytest.fixture(scope="module")
def served(own_postgres, tmp_path_factory, collected_static):
    """gunicorn and the worker on the test's own server, through its socket."""
    pg = own_postgres
    info = pg.info()
    port = free_port()
    logs = tmp_path_factory.mktemp("outage-logs")
    env = {
        **pg.env,
        "DATABASE_URL": "postgres://postgres@/witchcraft",
        "PGHOST": str(info.socket_dir),
        "PGPORT": str(info.port),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "USAGE_SELF_REPORTING": "true",
        "WITCHCRAFT_DATA_DIR": str(logs / "data"),  # gunicorn's metric files, not the server
    }
    user_id, token = _member(pg, env)
    processes = {
        "web": start_gunicorn(env=env, log=logs / "web.log"),
        # As `make run` starts it: a new worker when this one dies.
        "worker": start(
            [sys.executable, "manage.py", "worker", "--respawn", "--max-backoff=1"],
            env=env,
            log=logs / "worker.log",
        ),
    }
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_answers(f"{base}/healthz", processes["web"]), (
            logs / "web.log"
        ).read_text()
        yield {
            "base": base,
            "token": token,
            "user_id": user_id,
            "processes": processes,
            "logs": logs,
        }
    finally:
        for process in processes.values():
            stop(process)


class Load:
    """Clients recording usage (and a monitor reading /healthz) until stopped; every answer kept."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.stop = threading.Event()
        self.answers: list[tuple[str, int, dict | None, str, float]] = []
        self.acknowledged: set[str] = set()
        self.health: list[tuple[int, str]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]
        self.threads.append(threading.Thread(target=self._monitor))

    def _client(self, n: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token}"}
        count = 0
        while not self.stop.is_set():
            count += 1
            request_id = f"outage-{n}-{count}"
            body = {
                "request_id": request_id,
                "model": "gpt-5-mini",
                "input_tokens": 10,
                "output_tokens": 5,
            }
            try:
                response = session.post(
                    f"{self.base}/api/v1/usage", json=body, headers=headers, timeout=30
                )
            except requests.RequestException as exc:  # the server never failed to answer
                with self.lock:
                    self.answers.append((request_id, -1, None, repr(exc), time.monotonic()))
                continue
            try:
                payload = response.json()
            except ValueError:
                payload = None
            with self.lock:
                self.answers.append(
                    (
                        request_id,
                        response.status_code,
                        payload,
                        response.headers.get("Retry-After", ""),
                        time.monotonic(),
                    )
                )
                if response.status_code < 300:
                    self.acknowledged.add(request_id)
            time.sleep(PAUSE)

    def _monitor(self) -> None:
        while not self.stop.is_set():
            try:
                response = requests.get(f"{self.base}/healthz", timeout=30)
                page = requests.get(f"{self.base}/auth/login/", timeout=30)
            except requests.RequestException as exc:
                self.health.append((-1, repr(exc)))
            else:
                self.health.append((response.status_code, response.text))
                self.health.append(
                    (page.status_code, page.text[:200] if page.status_code >= 500 else "")
                )
            time.sleep(0.2)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def successes_since(self, moment: float) -> int:
        with self.lock:
            return sum(1 for a in self.answers if a[1] < 300 and a[1] > 0 and a[4] > moment)


def _wait_for_successes(load: Load, since: float, logs: Path, *, seconds: float = 90) -> None:
    """Every client has had a success since ``since`` (the web server recovered by itself)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if load.successes_since(since) >= CLIENTS:
            return
        time.sleep(0.2)
    with load.lock:
        last = [(a[1], a[2]) for a in load.answers[-5:]]
    web = (logs / "web.log").read_text()[-3000:]
    pytest.fail(f"the web server did not recover by itself; last answers: {last}\n{web}")


def _stored(pg: OwnPostgres, user_id: int) -> set[str]:
    info = pg.info()
    with psycopg.connect(
        host=str(info.socket_dir), port=info.port, user="postgres", dbname="witchcraft"
    ) as conn:
        rows = conn.execute(
            "SELECT request_id FROM ai_usage_requests WHERE user_id = %s", [user_id]
        )
        return {row[0] for row in rows}


def _heartbeat_after(pg: OwnPostgres, moment) -> bool:
    info = pg.info()
    with psycopg.connect(
        host=str(info.socket_dir), port=info.port, user="postgres", dbname="witchcraft"
    ) as conn:
        (beat,) = conn.execute("SELECT max(last_heartbeat) FROM procrastinate_workers").fetchone()
    return beat is not None and beat > moment


def _server_now(pg: OwnPostgres):
    info = pg.info()
    with psycopg.connect(
        host=str(info.socket_dir), port=info.port, user="postgres", dbname="witchcraft"
    ) as conn:
        return conn.execute("SELECT now()").fetchone()[0]


def test_the_database_killed_and_stopped_under_load(own_postgres, served):
    pg = own_postgres
    with Load(served["base"], served["token"]) as load:
        time.sleep(1.5)
        os.kill(pg.info().pid, signal.SIGKILL)  # kill -9 the postmaster
        time.sleep(OUTAGE_SECONDS)
        pg.start()
        restarted = time.monotonic()
        _wait_for_successes(load, restarted, served["logs"])
        pg.stop()  # a clean stop (fast shutdown: sessions are ended)
        time.sleep(OUTAGE_SECONDS)
        pg.start()
        restarted = time.monotonic()
        _wait_for_successes(load, restarted, served["logs"])
        back_at = _server_now(pg)
        time.sleep(1)

    statuses = Counter(answer[1] for answer in load.answers)
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses[503] > 0, "the outage was never seen"
    for request_id, status, payload, retry_after, _ in load.answers:
        if status == 503:
            assert payload == {
                "error": {"code": "database_unavailable", "message": payload["error"]["message"]}
            }, (request_id, payload)
            assert retry_after.isdigit()

    assert load.acknowledged <= _stored(pg, served["user_id"])

    leaks = ("socket", "refused", "/tmp", str(pg.data), "Traceback", "psycopg")
    for status, text in load.health:
        assert status in (200, 503), (status, text)
        assert not any(leak in text for leak in leaks), text
    assert any(status == 503 for status, _ in load.health)

    # Both recovered by themselves: still running, and the worker beats again.
    for name, process in served["processes"].items():
        assert process.poll() is None, f"{name} exited"
    deadline = time.monotonic() + 30
    while not _heartbeat_after(pg, back_at):
        assert time.monotonic() < deadline, (served["logs"] / "worker.log").read_text()[-3000:]
        time.sleep(0.5)
    assert requests.get(f"{served['base']}/healthz?part=worker", timeout=10).status_code == 200

    web_log = (served["logs"] / "web.log").read_text()
    assert "Internal Server Error" not in web_log
    assert "Traceback" not in web_log
    worker_log = (served["logs"] / "worker.log").read_text()
    assert 1 <= worker_log.count("worker: lost the database") <= 2, worker_log[-3000:]
    assert "Traceback" not in worker_log


def test_a_worker_that_dies_is_started_again(own_postgres, served):
    """``manage.py worker --respawn`` (``make run``): the worker killed with -9 is replaced."""
    pg = own_postgres
    parent = psutil.Process(served["processes"]["worker"].pid)
    (child,) = parent.children()
    child.kill()
    child.wait(timeout=10)
    killed_at = _server_now(pg)
    deadline = time.monotonic() + 30
    while not _heartbeat_after(pg, killed_at):
        assert time.monotonic() < deadline, (served["logs"] / "worker.log").read_text()[-3000:]
        time.sleep(0.5)
    (replacement,) = parent.children()
    assert replacement.pid != child.pid
    log = (served["logs"] / "worker.log").read_text()
    assert "exited with status -9; starting a new one" in log
