"""Slow statements from pg_stat_statements, end to end, on a server that preloads it.

No server the rest of the suite uses preloads pg_stat_statements (the embedded PostgreSQL 18's
build lacks the module; the machine's PostgreSQL 15 has it but does not preload it), so this
test starts a PostgreSQL of its own from the machine's Debian server programs with
``shared_preload_libraries=pg_stat_statements`` and migrates the project into it: the monitoring
migration creates the extension in the schema ``monitoring`` there. A process configured like
any other (``DATABASE_URL`` naming that server, DEBUG off) then renders the staff monitoring
page and scrapes ``/metrics`` through Django's test client, runs one statement slower than a
second as the runtime role in a member's request context, renders and scrapes again, and tries
to read pg_stat_statements directly as a member and as staff. This test reads what that process
saw.

Where the server programs are missing the test fails (never skips), saying what to install:
``make test`` installs them, and this machine kind and CI have them.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from witchcraft.testing.servers import ROOT, DebianPostgres, debian_server_bin

# A name pg_stat_statements keeps (it replaces constants, not aliases): the probe's row is ours.
PROBE = "witchcraft_slow_probe"
PROBE_SQL = f"SELECT pg_sleep(1.1) AS {PROBE}"  # 1.1 s: above the 1 s threshold however idle
PROBE_TEXT = f"SELECT pg_sleep($1) AS {PROBE}"  # as pg_stat_statements normalises it
METRICS_TOKEN = secrets.token_urlsafe(24)

# Run in the served configuration: staff render the page, a scraper reads /metrics, before and
# after a member's request runs the probe; then direct reads of the extension, which must fail.
# Prints one JSON object.
SEEN_BY_THE_APPLICATION = """
import json, os
import django
django.setup()
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import setup_test_environment
from accounts.models import User
from witchcraft.platform import rls

setup_test_environment()  # response.context, and the test client's host allowed
staff = User.objects.create_user(email="staff@example.com", is_staff=True)
member = User.objects.create_user(email="member@example.com")


def look():
    client = Client()
    client.force_login(staff)
    page = client.get("/dashboard/monitoring/", secure=True)
    scrape = client.get(
        "/metrics", secure=True, HTTP_AUTHORIZATION="Bearer " + os.environ["METRICS_TOKEN"]
    )
    return {
        "status": page.status_code,
        "slow": page.context["slow"] if page.status_code == 200 else None,
        "html": page.content.decode(),
        "metrics_status": scrape.status_code,
        "metrics": scrape.content.decode(),
    }


before = look()
with transaction.atomic(), rls.user_context(member), connection.cursor() as cursor:
    cursor.execute("SELECT current_user")
    (probe_role,) = cursor.fetchone()
    cursor.execute(os.environ["PROBE_SQL"])
after = look()

direct = {}
for who, user in (("member", member), ("staff", staff)):
    for sql in (
        "SELECT 1 FROM monitoring.pg_stat_statements LIMIT 1",
        "SELECT 1 FROM monitoring.pg_stat_statements_info",
        "SELECT monitoring.pg_stat_statements_reset()",
        "SELECT 1 FROM pg_stat_statements LIMIT 1",
        "SELECT monitoring_statements_state()",
        "SELECT * FROM monitoring_slow_statements(1000, 20)",
    ):
        try:
            with transaction.atomic(), rls.user_context(user), connection.cursor() as cursor:
                cursor.execute(sql)
                cursor.fetchall()
            direct[f"{who}: {sql}"] = "read"
        except DatabaseError as exc:
            direct[f"{who}: {sql}"] = str(exc).splitlines()[0]

member_client = Client()
member_client.force_login(member)
print(json.dumps({
    "before": before,
    "after": after,
    "probe_role": probe_role,
    "direct": direct,
    "member_page": member_client.get("/dashboard/monitoring/", secure=True).status_code,
}, default=str))
"""


@pytest.fixture(scope="module")
def server():
    """The test's own PostgreSQL with pg_stat_statements preloaded, migrated, stopped after."""
    try:
        bin_dir = debian_server_bin(module="pg_stat_statements")
    except LookupError as exc:
        pytest.fail(f"this test needs the machine's PostgreSQL server: {exc}")
    # Not under pytest's folder: pytest makes it private (0700), and as root the server runs as
    # the postgres user.
    data = Path(tempfile.mkdtemp(prefix="witchcraft-slow-"))
    pg = DebianPostgres(
        data, bin_dir=bin_dir, settings={"shared_preload_libraries": "pg_stat_statements"}
    )
    try:
        pg.start()
        migrated = pg.manage("migrate", "--noinput", timeout=300)
        assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(data, ignore_errors=True)


def _owner(pg: DebianPostgres) -> psycopg.Connection:
    info = pg.info()
    return psycopg.connect(
        host=str(info.socket_dir), port=info.port, user="postgres", dbname="witchcraft"
    )


@pytest.fixture(scope="module")
def seen(server, collected_static):
    """What the application reported (see SEEN_BY_THE_APPLICATION), from statistics reset
    after the migration (so that none of its statements counts)."""
    with _owner(server) as conn:
        conn.execute("SELECT monitoring.pg_stat_statements_reset()")
    done = subprocess.run(
        [sys.executable, "-c", SEEN_BY_THE_APPLICATION],
        cwd=ROOT,
        env={
            **server.env,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "STAFF_2FA_REQUIRED": "false",
            "METRICS_TOKEN": METRICS_TOKEN,
            "PROBE_SQL": PROBE_SQL,
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gauges(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _probe_rows(slow: dict) -> list[dict]:
    return [s for s in slow["statements"] if s["query"] == PROBE_TEXT]


def test_the_migration_installs_it_in_the_monitoring_schema_and_it_answers(server, seen):
    with _owner(server) as conn:
        (schema,) = conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
            " ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"
        ).fetchone()
        (preloaded,) = conn.execute("SHOW shared_preload_libraries").fetchone()
    assert schema == "monitoring"
    assert preloaded == "pg_stat_statements"
    before = seen["before"]
    assert before["status"] == 200, before["html"][:2000]
    assert before["slow"]["statements_state"] == "ok"
    assert "not loaded" not in before["html"] and "not installed" not in before["html"]
    assert not _probe_rows(before["slow"])
    assert PROBE not in before["html"]
    gauges = _gauges(before["metrics"])
    assert gauges[("witchcraft_pg_stat_statements_available", (("state", "ok"),))] == 1


def test_a_statement_slower_than_a_second_is_listed_and_counted(seen):
    before, after = seen["before"], seen["after"]
    assert seen["probe_role"] == "witchcraft_app"  # run as the runtime role, in a request
    assert after["status"] == 200, after["html"][:2000]
    slow = after["slow"]
    assert slow["statements_state"] == "ok"
    (probe,) = _probe_rows(slow)
    assert probe["calls"] == 1
    assert probe["mean_ms"] >= 1100 and probe["max_ms"] >= 1100
    assert slow["statements_count"] >= before["slow"]["statements_count"] + 1
    assert slow["statements_count"] >= len(slow["statements"])
    # The page lists it in the slow statements table, and the alert says there is one.
    table = re.search(r'<table id="slow-statements">.*?</table>', after["html"], re.DOTALL)
    assert table, after["html"][-4000:]
    assert f"<tr><td><code>{PROBE_TEXT}</code></td><td>1</td>" in table.group(0)
    assert f"{slow['statements_count']} slow statements" in after["html"]

    assert before["metrics_status"] == after["metrics_status"] == 200
    was, now = _gauges(before["metrics"]), _gauges(after["metrics"])
    assert now[("witchcraft_key_metrics_up", ())] == 1
    assert now[("witchcraft_pg_stat_statements_available", (("state", "ok"),))] == 1
    assert now[("witchcraft_slow_statements", ())] >= was[("witchcraft_slow_statements", ())] + 1
    calls = ("witchcraft_slow_statement_calls", ())
    assert now[calls] >= was[calls] + 1


def test_only_the_staff_functions_read_it(seen):
    """Its query text is every role's: the runtime role cannot enter its schema, whoever the
    request is for; the functions that can refuse a member; members do not see the page."""
    direct = seen["direct"]
    for who in ("member", "staff"):
        for relation in ("pg_stat_statements", "pg_stat_statements_info"):
            sql = f"SELECT 1 FROM monitoring.{relation}" + (
                " LIMIT 1" if relation == "pg_stat_statements" else ""
            )
            assert direct[f"{who}: {sql}"] == "permission denied for schema monitoring"
        reset = direct[f"{who}: SELECT monitoring.pg_stat_statements_reset()"]
        assert reset == "permission denied for schema monitoring"
        # No copy of it on the search path either.
        unqualified = direct[f"{who}: SELECT 1 FROM pg_stat_statements LIMIT 1"]
        assert unqualified == 'relation "pg_stat_statements" does not exist'
    for sql in (
        "SELECT monitoring_statements_state()",
        "SELECT * FROM monitoring_slow_statements(1000, 20)",
    ):
        assert direct[f"member: {sql}"] == "monitoring is for staff"
        assert direct[f"staff: {sql}"] == "read"
    assert seen["member_page"] == 404
