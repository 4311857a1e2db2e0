"""Analytics on a real streaming standby: gunicorn serves the API and the pages from an embedded
primary of this test's own with ``DATABASE_REPLICA_URL=embedded`` (the standby that
``manage.py db replica start`` takes with ``pg_basebackup -R``).

What is proved, with the standby's own statistics (its table scans), not mocks: analytics pages
and API summaries are read on the standby; a user's fresh write is on their next page while the
standby's replay is paused (read-your-writes); a stopped standby leaves every page served from
the primary with no error, and a standby started again is used again without a restart; the
row-level security policies hold on the standby as on the primary.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import requests
from django.db import connection

from witchcraft.platform import embedded_db
from witchcraft.testing.servers import (
    DebianPostgres,
    OwnPostgres,
    copy_test_database,
    debian_server_bin,
    free_port,
    start_gunicorn,
    stop,
    wait_until_answers,
)

pytestmark = pytest.mark.django_db  # the test database is copied from

MEMBERS = """
import json
from django.test import Client
from billing.models import SubscriptionTier
from witchcraft.testing import factories
# The tests read many pages a minute: past any plan's rate limit, which is not what they test.
SubscriptionTier.objects.update(requests_per_minute=100000)
a = factories.api_member(tier='enterprise', email='reader-a@example.com')
b = factories.api_member(tier='enterprise', email='reader-b@example.com')
staff = factories.UserFactory(email='staff-replica@example.com', is_staff=True)
cookies = {}
for name, user in (('a', a), ('staff', staff)):
    client = Client()
    client.force_login(user)
    cookies[name] = {key: morsel.value for key, morsel in client.cookies.items()}
print(json.dumps({'a': [a.pk, a.token], 'b': [b.pk, b.token], 'cookies': cookies}))
"""
API_PAGES = ("/api/v1/usage/summary", "/api/v1/usage/daily", "/api/v1/usage/monthly")
STAFF_PAGES = (
    "/dashboard/",
    "/dashboard/usage/",
    "/dashboard/usage.csv",
    "/dashboard/monitoring/",
    "/dashboard/reports/",
    "/dashboard/reports.csv",
    "/dashboard/audit/",
    "/dashboard/audit.csv",
    "/dashboard/agents/",
)
AS_OF = "Figures from the read replica, as of "


class Pair:
    """A primary and its physical standby, as the web server reaches them (``env``), with a
    way to stop and start the standby."""

    def __init__(self, primary, env: dict, standby_pgdata: Path, stop_standby, start_standby):
        self.primary, self.env = primary, env
        self.standby_pgdata = standby_pgdata
        self.stop_standby, self.start_standby = stop_standby, start_standby


def _checked(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stdout + done.stderr


def _embedded_pair(data: Path, django_db_blocker) -> Pair:
    """The embedded server with a copy of the test database, and `manage.py db replica start`."""
    pg = OwnPostgres(data)
    pg.start()
    with django_db_blocker.unblock():
        copy_test_database(pg, connection)
    _checked(pg.manage("db", "replica", "start"))
    return Pair(
        pg,
        {**pg.env, "DATABASE_REPLICA_URL": "embedded"},
        data / "replica" / "pgdata",
        lambda: _checked(pg.manage("db", "replica", "stop")),
        lambda: _checked(pg.manage("db", "replica", "start")),
    )


class DebianStandby(DebianPostgres):
    PORT = 5433  # its socket's name, beside nothing else: its own folder


def _debian_pair(data: Path) -> Pair:
    """The machine's PostgreSQL (Debian's, 15 here) through DATABASE_URL, migrated, and a
    standby taken with its own pg_basebackup -R, named by DATABASE_REPLICA_URL."""
    try:
        bin_dir = debian_server_bin()
    except LookupError as exc:
        pytest.fail(f"this test needs the machine's PostgreSQL server: {exc}")
    data.chmod(0o755)  # mkdtemp's folder is private: the servers' user goes through it
    primary = DebianPostgres(data / "primary", bin_dir=bin_dir)
    (data / "primary").mkdir()
    primary.start()
    _checked(primary.manage("migrate", "--noinput", "-v0", timeout=300))
    standby = DebianStandby(data / "standby", bin_dir=bin_dir)
    (data / "standby").mkdir()
    user = DebianPostgres._system_user()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(data / "standby", entry.pw_uid, entry.pw_gid)
    standby._run(
        "pg_basebackup",
        *("-D", str(standby.data / "pgdata"), "-R", "-X", "stream", "--checkpoint=fast"),
        *("-h", str(primary.data), "-p", str(primary.PORT), "-U", "postgres"),
    )
    standby.start()
    socket = quote(str(standby.data), safe="")
    return Pair(
        primary,
        {
            **primary.env,
            "DATABASE_REPLICA_URL": f"postgres://postgres@{socket}:{standby.PORT}/witchcraft",
            "WITCHCRAFT_DATA_DIR": str(data),  # gunicorn's metric files
        },
        standby.data / "pgdata",
        standby.stop,
        standby.start,
    )


@pytest.fixture(scope="module", params=["embedded", "debian"])
def servers(request, django_db_setup, django_db_blocker):
    """A primary and its standby: the embedded pair (`make replica`), and one of the machine's
    own PostgreSQL (a DATABASE_URL server and the URL of its standby)."""
    # Not under pytest's folder (made private again by each pytest run).
    data = Path(tempfile.mkdtemp(prefix=f"witchcraft-replica-{request.param}-"))
    try:
        if request.param == "embedded":
            pair = _embedded_pair(data, django_db_blocker)
        else:
            pair = _debian_pair(data)
        yield pair
    finally:
        if request.param == "embedded":
            OwnPostgres(data).manage("db", "replica", "stop")  # the standby first
            OwnPostgres(data).manage("db", "stop")
        else:
            for folder in ("standby", "primary"):
                with contextlib.suppress(RuntimeError, LookupError):
                    DebianPostgres(data / folder, bin_dir=debian_server_bin()).stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def served(servers, tmp_path_factory, collected_static):
    pair = servers
    port = free_port()
    logs = tmp_path_factory.mktemp("replica-logs")
    env = {
        **pair.env,
        "REPLICA_RETRY_SECONDS": "0.5",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "STAFF_2FA_REQUIRED": "false",
        "METRICS_ALLOWED_IPS": "127.0.0.1",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        # One worker: its counters and its view of the replica are the ones /metrics shows.
        "WEB_CONCURRENCY": "1",
        # A connection ends with its request: the standby's statistics are flushed at once.
        "CONN_MAX_AGE": "0",
        "USAGE_SELF_REPORTING": "true",
    }
    made = pair.primary.manage("shell", "-c", MEMBERS, env=env)
    assert made.returncode == 0, made.stderr
    members = json.loads(made.stdout.strip().splitlines()[-1])
    web = start_gunicorn(env=env, log=logs / "web.log")
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_answers(f"{base}/healthz", web), (logs / "web.log").read_text()
        world = World(base, pair, members)
        world.record("a", 3)
        world.record("b", 2)
        yield world
    finally:
        stop(web)


class World:
    """The served site, its two servers and the members' credentials."""

    def __init__(self, base: str, pair: Pair, members: dict) -> None:
        self.base, self.pair = base, pair
        self.tokens = {name: members[name][1] for name in ("a", "b")}
        self.cookies = members["cookies"]
        self.recorded = 0

    # --- the two servers ------------------------------------------------------------------
    def primary(self) -> psycopg.Connection:
        return psycopg.connect(self.pair.primary.info().url(), autocommit=True)

    def standby_info(self) -> embedded_db.ServerInfo | None:
        return embedded_db.read_pidfile(self.pair.standby_pgdata)

    def standby(self) -> psycopg.Connection:
        info = self.standby_info()
        assert info is not None, "the standby is not running"
        return psycopg.connect(info.url(), autocommit=True)

    def scans(self) -> int:
        """Table scans the standby has counted (its own statistics: only its queries)."""
        with self.standby() as conn:
            return conn.execute(
                "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint"
                " FROM pg_stat_user_tables"
            ).fetchone()[0]

    def caught_up(self) -> None:
        """Wait until the standby has replayed everything the primary had written."""
        with self.primary() as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + 30
        with self.standby() as conn:
            while time.monotonic() < deadline:
                if conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [str(target)]
                ).fetchone()[0]:
                    return
                time.sleep(0.05)
        raise AssertionError("the standby did not catch up within 30 s")

    def read_on_standby(self, fetch) -> bool:
        """Fetch a page and say whether the standby served it (its scans grew)."""
        self.caught_up()
        before = self.scans()
        response = fetch()
        assert response.status_code == 200, response.text[:500]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.scans() > before:
                return True
            time.sleep(0.1)
        return False

    # --- the site ---------------------------------------------------------------------------
    def api(self, who: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return requests.get(self.base + path, headers=headers, timeout=30, **kwargs)

    def page(self, who: str, path: str) -> requests.Response:
        return requests.get(self.base + path, cookies=self.cookies[who], timeout=30)

    def record(self, who: str, count: int) -> None:
        for _ in range(count):
            self.recorded += 1
            response = requests.post(
                f"{self.base}/api/v1/usage",
                json={
                    "request_id": f"replica-{self.recorded}",
                    "model": "gpt-5-mini",
                    "input_tokens": 100,
                    "output_tokens": 50,
                },
                headers={"Authorization": f"Bearer {self.tokens[who]}"},
                timeout=30,
            )
            assert response.status_code == 201, response.text

    def requests_today(self, who: str) -> int:
        items = self.api(who, "/api/v1/usage/daily").json()["items"]
        return sum(item["requests"] for item in items)

    def fallbacks(self, reason: str) -> float:
        """``witchcraft_replica_reads_total{server="primary", reason=...}`` from /metrics."""
        text = requests.get(f"{self.base}/metrics", timeout=30).text
        labels = ('server="primary"', f'reason="{reason}"')
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("witchcraft_replica_reads_total{")
            and all(label in line for label in labels)
        )


def test_analytics_are_read_on_the_standby(served):
    for path in API_PAGES:
        assert served.read_on_standby(lambda p=path: served.api("a", p)), path
    assert served.read_on_standby(lambda: served.page("a", "/me/usage/"))
    for path in STAFF_PAGES:
        assert served.read_on_standby(lambda p=path: served.page("staff", p)), path
    overview = served.page("staff", "/dashboard/")
    assert AS_OF in overview.text
    monitoring = served.page("staff", "/dashboard/monitoring/").text
    assert '<section id="replica" data-state="ok">' in monitoring
    assert "Replay lag" in monitoring and "WAL still to replay" in monitoring
    # The figures are the primary's: a's three requests of today.
    assert served.requests_today("a") == 3
    health = requests.get(f"{served.base}/healthz", timeout=30).json()
    assert health["replica"]["status"] == "ok"
    assert "replica" not in health["failing"]
    gauges = requests.get(f"{served.base}/metrics", timeout=30).text.splitlines()
    assert "witchcraft_replica_up 1.0" in gauges
    assert "witchcraft_replica_lagging 0.0" in gauges


def test_a_users_fresh_write_is_on_their_next_page_while_replay_is_paused(served):
    with served.primary() as conn:  # a commit now: the standby's replayed one is recent
        conn.execute("SELECT pg_current_xact_id()")
    served.caught_up()
    before = served.requests_today("a")
    behind = served.fallbacks("behind_write")
    with served.standby() as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        served.record("a", 1)
        # a's next page has the write: read on the primary, since the standby is held back.
        assert served.requests_today("a") == before + 1
        assert served.fallbacks("behind_write") > behind
        # b wrote nothing since: b's pages still come from the standby, held back or not.
        before_scans = served.scans()
        assert served.api("b", "/api/v1/usage/daily").status_code == 200
        deadline = time.monotonic() + 5
        while served.scans() == before_scans and time.monotonic() < deadline:
            time.sleep(0.1)
        assert served.scans() > before_scans
        # Staff read slightly behind, and the page says as of when.
        assert AS_OF in served.page("staff", "/dashboard/").text
    finally:
        with served.standby() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
    # Once the standby has replayed the write, a's pages are read there again.
    assert served.read_on_standby(lambda: served.api("a", "/api/v1/usage/daily"))


def test_a_stopped_standby_leaves_every_page_to_the_primary(served):
    answers = {path: served.api("a", path).json() for path in API_PAGES}
    down = served.fallbacks("down")
    served.pair.stop_standby()
    try:
        for path in API_PAGES:
            response = served.api("a", path)
            assert response.status_code == 200, response.text
            assert response.json() == answers[path]
        for path in ("/me/usage/",):
            assert served.page("a", path).status_code == 200
        for path in STAFF_PAGES:
            response = served.page("staff", path)
            assert response.status_code == 200, response.text[:500]
            assert AS_OF not in response.text
        assert served.fallbacks("down") > down
        monitoring = served.page("staff", "/dashboard/monitoring/").text
        assert '<section id="replica" data-state="down">' in monitoring
        health = requests.get(f"{served.base}/healthz", timeout=30)
        assert health.status_code == 200
        assert health.json()["replica"]["status"] == "down"
        assert "replica" not in health.json()["failing"]  # reported, not failing
    finally:
        served.pair.start_standby()
    # Back: used again by the same web server, without a restart.
    time.sleep(1)
    assert served.read_on_standby(lambda: served.api("a", "/api/v1/usage/daily"))


def test_row_level_security_holds_on_the_standby(served):
    served.caught_up()
    with served.primary() as conn:
        ids = dict(
            conn.execute(
                "SELECT email, id FROM users WHERE email IN (%s, %s)",
                ["reader-a@example.com", "reader-b@example.com"],
            ).fetchall()
        )
    a, b = ids["reader-a@example.com"], ids["reader-b@example.com"]

    def owners(**identity: str) -> set[int]:
        with served.standby() as conn, conn.transaction():
            conn.execute("SET LOCAL ROLE witchcraft_app")
            for name, value in identity.items():
                conn.execute("SELECT set_config(%s, %s, true)", [f"app.{name}", value])
            rows = conn.execute("SELECT DISTINCT user_id FROM ai_usage_daily").fetchall()
        return {row[0] for row in rows}

    assert owners(user_id=str(a)) == {a}
    assert owners(user_id=str(b)) == {b}
    assert {a, b} <= owners(user_id=str(a), is_admin="true")
    assert owners() == set()  # no identity: nothing
