"""/dashboard/monitoring/: the seed's key metrics and alert states."""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.urls import reverse

from accounts.models import AuditLog, User
from billing.models import UserQuota
from usage.models import AIUsageDaily
from witchcraft.models import MaintenanceRun
from witchcraft.operations import monitoring
from witchcraft.operations.pitr.status import backup_status
from witchcraft.testing import factories
from witchcraft.testing.backups import SEGMENT, backup_run, healthy_backups, wal_summary

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:monitoring")


@pytest.fixture
def staff(client):
    member = User.objects.create_user(
        email="staff@example.com", password="correct horse battery", is_staff=True
    )
    client.force_login(member)
    return client


def _states(response) -> dict[str, str]:
    return {alert.name: alert.state for alert in response.context["alerts"]}


def _quota(ratio: str):
    user = factories.UserFactory()
    quota = factories.quota_for(user)
    UserQuota.objects.filter(pk=quota.pk).update(
        tokens_used=int(quota.tokens_limit * Decimal(ratio))
    )
    return user


def _daily(*, requests: int, errors: int, latency_ms: int = 200):
    model = factories.catalog_model()
    AIUsageDaily.objects.create(
        user=factories.UserFactory(),
        usage_date=datetime.now(UTC).date(),
        provider_id=model.provider_id,
        model=model,
        request_count=requests,
        success_count=requests - errors,
        error_count=errors,
        latency_ms_sum=latency_ms * requests,
        latency_count=requests,
    )


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "next=" in response["Location"]


def test_a_signed_in_member_gets_a_404(client):
    client.force_login(factories.UserFactory())
    assert client.get(URL).status_code == 404


def test_no_data_every_alert_is_ok(staff):
    response = staff.get(URL)
    assert response.status_code == 200
    assert _states(response) == {
        "Quota exceeded": "OK",
        "Quota warning": "OK",
        "Failed login spike": "OK",
        "High error rate": "OK",
        "Database size": "OK",
        "Slow queries": "OK",
        "Backups": "OK",  # off (PITR_ENABLED false): never firing
    }
    html = response.content.decode()
    assert "No query of this database has been running longer than 1 s" in html
    for table, _ in monitoring.TABLE_ESTIMATES:
        assert f"<td>{table}</td>" in html
    sizes = response.context["sizes"]
    assert sizes["database"] > 0
    # Plain tables count their indexes; ai_usage_requests (an empty parent) its partitions.
    assert [t["name"] for t in sizes["tables"]] == [n for n, _ in monitoring.TABLE_ESTIMATES]
    assert all(t["bytes"] > 0 for t in sizes["tables"])
    assert response.context["conns"]["total"] >= 1
    assert response.context["today"]["avg_latency_ms"] is None


def test_one_user_over_quota_fires_both_quota_alerts(staff):
    _quota("1.2")
    _quota("0.1")
    response = staff.get(URL)
    assert _states(response)["Quota exceeded"] == "firing"
    assert _states(response)["Quota warning"] == "firing"
    assert response.context["quotas"]["exceeded"] == 1
    # Every user has a quota (the staff member too, where sign-up gives one).
    quotas = response.context["quotas"]
    assert quotas["share_warning"] == 1 / UserQuota.objects.count() == 1 / quotas["total"]


def test_a_user_near_quota_fires_the_warning_only(staff):
    _quota("0.85")
    states = _states(staff.get(URL))
    assert states["Quota exceeded"] == "OK" and states["Quota warning"] == "firing"


@pytest.mark.parametrize(("failures", "state"), [(11, "firing"), (10, "warning"), (4, "OK")])
def test_failed_login_spike(staff, failures, state):
    user = factories.UserFactory()
    AuditLog.objects.bulk_create(
        AuditLog(user=user, event_type="login_failed", severity="warning") for _ in range(failures)
    )
    AuditLog.objects.create(user=user, event_type="login_succeeded")
    assert _states(staff.get(URL))["Failed login spike"] == state


def test_todays_usage_metrics(staff):
    _daily(requests=90, errors=3, latency_ms=100)
    _daily(requests=10, errors=3, latency_ms=1000)
    response = staff.get(URL)
    today = response.context["today"]
    assert today["users"] == 2 and today["requests"] == 100
    assert today["unsuccessful"] == 6
    assert today["avg_latency_ms"] == 190
    # Today's roll-up counts every unsuccessful request together: it is not the error rate.
    assert _states(response)["High error rate"] == "OK"


# --- requests over the last 1, 5 and 60 minutes --------------------------------------------

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def pinned(monkeypatch):
    """The page's clock at NOW."""
    monkeypatch.setattr(monitoring, "clock", lambda: NOW)
    return NOW


def _requests(status: str, count: int, *, ago: timedelta):
    model = factories.catalog_model()
    user = factories.UserFactory()
    for _ in range(count):
        factories.usage_request(user=user, model=model, created_at=NOW - ago, status=status)


def _traffic():
    """Rows in each window and outside them (before the hour, at and after NOW)."""
    s = timedelta(seconds=1)
    _requests("success", 8, ago=30 * s)
    _requests("error", 1, ago=60 * s)  # the first second of the 1-minute window
    _requests("timeout", 1, ago=5 * s)
    _requests("cancelled", 3, ago=10 * s)
    _requests("rejected", 2, ago=20 * s)
    _requests("success", 10, ago=61 * s)  # the 5-minute window, not the last minute
    _requests("rejected", 4, ago=4 * 60 * s)
    _requests("success", 20, ago=30 * 60 * s)
    _requests("error", 1, ago=60 * 60 * s)  # the first second of the hour
    _requests("error", 5, ago=60 * 60 * s + s)  # before the hour
    _requests("error", 5, ago=0 * s)  # at NOW: not yet
    _requests("error", 5, ago=-10 * s)  # after NOW


def test_the_windows_count_by_status_with_cancelled_and_rejected_apart(staff, pinned):
    _traffic()
    response = staff.get(URL)
    windows = {w.name: w for w in response.context["windows"]}
    one, five, hour = windows["1m"], windows["5m"], windows["60m"]
    assert (one.succeeded, one.failed, one.cancelled, one.rejected) == (8, 2, 3, 2)
    assert (five.succeeded, five.failed, five.cancelled, five.rejected) == (18, 2, 3, 6)
    assert (hour.succeeded, hour.failed, hour.cancelled, hour.rejected) == (38, 3, 3, 6)
    assert one.total == 15 and five.total == 29 and hour.total == 50
    assert one.requests_per_second == 15 / 60
    assert five.requests_per_second == 29 / 300
    assert hour.requests_per_second == 50 / 3600
    # failed / (succeeded + failed): cancelled and rejected on neither side.
    assert one.error_rate == 2 / 10
    assert five.error_rate == 2 / 20
    assert hour.error_rate == 3 / 41
    html = response.content.decode()
    assert '<tr data-window="5m"><td>5m</td><td>29</td><td>0.097</td>' in html
    alert = next(a for a in response.context["alerts"] if a.name == "High error rate")
    assert alert.state == "firing"  # 10 % over the last 5 minutes
    assert alert.measured == "10.0 % (2 failed of 20; 3 cancelled and 6 rejected apart)"


def test_cancelled_and_rejected_requests_are_not_errors(staff, pinned):
    _requests("success", 10, ago=timedelta(seconds=30))
    _requests("cancelled", 10, ago=timedelta(seconds=30))
    _requests("rejected", 10, ago=timedelta(seconds=30))
    response = staff.get(URL)
    five = {w.name: w for w in response.context["windows"]}["5m"]
    assert five.failed == 0 and five.error_rate == 0.0
    assert (five.cancelled, five.rejected, five.total) == (10, 10, 30)
    assert _states(response)["High error rate"] == "OK"


def test_the_windows_are_empty_without_traffic(staff, pinned):
    _requests("error", 3, ago=timedelta(hours=2))
    windows = staff.get(URL).context["windows"]
    assert [(w.name, w.total, w.error_rate) for w in windows] == [
        ("1m", 0, 0.0),
        ("5m", 0, 0.0),
        ("60m", 0, 0.0),
    ]


def test_a_window_is_one_index_range_over_the_current_partition(django_user_model):
    """The hour's count reads the created_at index of the partition(s) it overlaps, not the
    month's rows. 5,000 rows over three and a half days, analysed; the planner chooses."""
    now = datetime.now(UTC)
    model = factories.catalog_model()
    user = factories.UserFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH k AS (INSERT INTO ai_usage_request_keys (usage_id, user_id, request_id,"
            "   created_at)"
            " SELECT nextval('ai_usage_requests_id_seq'), %(user)s, 'plan-' || g,"
            "        %(now)s - g * interval '1 minute' FROM generate_series(1, 5000) g"
            " RETURNING usage_id, user_id, request_id, created_at)"
            " INSERT INTO ai_usage_requests (id, created_at, user_id, provider_id, model_id,"
            "   request_id)"
            " SELECT usage_id, created_at, user_id, %(provider)s, %(model)s, request_id FROM k",
            {"user": user.pk, "now": now, "provider": model.provider_id, "model": model.pk},
        )
        cursor.execute("ANALYZE ai_usage_requests")
        # The predicate of monitoring_request_windows(), with its bound as a parameter.
        cursor.execute(
            "EXPLAIN (FORMAT JSON) SELECT r.status, count(*) FROM ai_usage_requests r"
            " WHERE r.created_at >= %(now)s::timestamptz - interval '60 minutes'"
            " AND r.created_at < %(now)s GROUP BY r.status",
            {"now": now},
        )
        plan = cursor.fetchone()[0][0]["Plan"]
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'ai_usage_requests_created_status'::regclass"
        )
        partition_indexes = {name for (name,) in cursor.fetchall()}

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    scans = [n for n in nodes(plan) if "Relation Name" in n]
    assert scans, plan
    assert all(n["Node Type"] != "Seq Scan" for n in scans), plan
    assert {n.get("Index Name") for n in scans} <= partition_indexes, plan
    # Only the partitions the hour overlaps (this month's, last month's in the first hour of a
    # month, DEFAULT where no month's partition exists).
    assert len(scans) <= 2, plan


def test_database_size_against_capacity(staff, settings):
    settings.DATABASE_CAPACITY_BYTES = 1024
    assert _states(staff.get(URL))["Database size"] == "firing"


# --- pg_stat_statements ----------------------------------------------------------------------


def _statements_expected() -> str:
    """What the server offers, read from its catalogs as the migration role (a superuser)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_stat_statements')"
        )
        (installed,) = cursor.fetchone()
        cursor.execute("SELECT current_setting('shared_preload_libraries')")
        (preloaded,) = cursor.fetchone()
    if not installed:
        return "absent"
    return "ok" if "pg_stat_statements" in preloaded else "not_loaded"


def test_pg_stat_statements_absent_is_said_without_error(staff):
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
    response = staff.get(URL)
    assert response.status_code == 200
    slow = response.context["slow"]
    assert (slow["statements_state"], slow["statements_count"], slow["statements"]) == (
        "absent",
        0,
        [],
    )
    assert b"pg_stat_statements is not installed in this database" in response.content
    assert _states(response)["Slow queries"] == "OK"


def test_pg_stat_statements_as_the_server_offers_it(staff):
    """Where the migration could create it: installed; answering only when preloaded (the
    embedded server preloads it when its build has the module). No server the suite runs on
    preloads it (the embedded wheel lacks the module, the machine's PostgreSQL does not preload
    it): test_slow_statements_live.py starts one that does and follows a slow statement from
    the database to this page and /metrics."""
    expected = _statements_expected()
    response = staff.get(URL)
    assert response.context["slow"]["statements_state"] == expected
    html = response.content.decode()
    if expected == "not_loaded":
        assert "installed but not loaded" in html
    elif expected == "absent":
        assert "not installed in this database" in html
    else:
        assert 'id="slow-statements"' in html or 'id="no-slow-statements"' in html


def test_the_runtime_role_cannot_read_pg_stat_statements():
    """Its query text is every role's: only the staff functions read it, not even staff
    directly."""
    from django.db import DatabaseError, transaction

    from witchcraft.platform import rls

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
            " ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"
        )
        row = cursor.fetchone()
    schema = row[0] if row else "monitoring"
    member = factories.UserFactory(is_staff=True)
    for relation in ("pg_stat_statements", "pg_stat_statements_info"):
        with (
            pytest.raises(DatabaseError, match="permission denied"),
            transaction.atomic(),
            rls.user_context(member),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"SELECT 1 FROM {schema}.{relation} LIMIT 1")


@pytest.mark.parametrize("count", [1, 40])
def test_query_count_is_bounded(staff, django_assert_max_num_queries, settings, count):
    settings.PITR_ENABLED = True
    healthy_backups()
    for minutes in range(count):
        _quota("0.9")
        _daily(requests=5, errors=0)
        backup_run("backup_wal", ago=timedelta(minutes=minutes + 1), summary=wal_summary())
        backup_run("backup_drill", ago=timedelta(days=3 + minutes), status="failed", error="x")
    with django_assert_max_num_queries(26):
        response = staff.get(URL)
    assert response.context["quotas"]["warning"] == count


def test_a_query_running_longer_than_a_second_fires_the_slow_query_alert(staff):
    """The selector, and the page run as the application role by a staff member, see another
    connection's slow query (through the SECURITY DEFINER monitoring functions)."""
    started = threading.Event()

    def sleeper():
        try:
            with connections["default"].cursor() as cursor:
                started.set()
                cursor.execute("SELECT pg_sleep(2.5)")
        finally:
            connections["default"].close()

    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        started.wait(5)
        time.sleep(1.5)
        slow = monitoring.slow_queries()
        response = staff.get(URL)
    finally:
        thread.join()
    assert slow["count"] >= 1
    assert any("pg_sleep" in (q["query"] or "") for q in slow["running"])
    quiet = {"exceeded": 0, "warning": 0}
    states = {
        alert.name: alert.state
        for alert in monitoring.alerts(
            quotas=quiet,
            logins={"failures": 0},
            windows=monitoring.request_windows(now=datetime.now(UTC)),
            sizes={"share": 0.0, "capacity": monitoring.GIB},
            slow=slow,
            backup=backup_status(),
        )
    }
    assert states["Slow queries"] == "firing"
    assert response.context["slow"]["count"] >= 1
    assert b"pg_sleep" in response.content


def test_the_monitoring_functions_are_for_staff_only(user):
    from django.db import DatabaseError, connection, transaction

    from witchcraft.platform import rls

    for sql in (
        "SELECT * FROM monitoring_connections()",
        "SELECT * FROM monitoring_slow_queries(1, 10)",
        "SELECT * FROM monitoring_request_windows(now())",
        "SELECT monitoring_statements_state()",
        "SELECT * FROM monitoring_slow_statements(1000, 10)",
    ):
        with (
            pytest.raises(DatabaseError, match="monitoring is for staff"),
            transaction.atomic(),
            rls.user_context(user),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)


# --- background jobs: the worker and the maintenance runs -------------------------------------


def _heartbeat(seconds_ago: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat)"
            " VALUES (now() - make_interval(secs => %s))",
            [seconds_ago],
        )


def test_no_worker_and_no_run_are_said(staff):
    response = staff.get(URL)
    html = response.content.decode()
    assert response.context["queue"]["status"] == "none"
    assert 'id="worker" data-state="none"' in html
    assert "no heartbeat: no worker is running" in html
    assert 'id="no-maintenance-runs"' in html


@pytest.mark.parametrize(("seconds_ago", "state"), [(4, "ok"), (301, "stale")])
def test_the_workers_heartbeat_is_shown(staff, settings, seconds_ago, state):
    settings.WORKER_STALE_SECONDS = 300
    _heartbeat(seconds_ago)
    response = staff.get(URL)
    queue = response.context["queue"]
    assert queue["status"] == state and queue["workers"] == 1
    html = response.content.decode()
    assert f'id="worker" data-state="{state}"' in html
    assert f"last heartbeat {queue['last_heartbeat']:%Y-%m-%d %H:%M:%S} UTC" in html


def test_the_last_runs_are_listed_with_their_counts_or_error(staff):
    from witchcraft.models import MaintenanceRun
    from witchcraft.operations import maintenance

    maintenance.maintenance_run(job="daily_maintenance", source="command")
    slot = datetime(2026, 3, 1, tzinfo=UTC)
    MaintenanceRun.objects.create(
        job="monthly_maintenance",
        source="schedule",
        scheduled_for=slot,
        started_at=datetime.now(UTC),
        finished_at=datetime.now(UTC),
        duration_ms=5004,
        status="failed",
        error="canceling statement due to lock timeout",
    )
    response = staff.get(URL)
    html = response.content.decode()
    runs = response.context["runs"]
    assert [run.job for run in runs] == ["monthly_maintenance", "daily_maintenance"]
    assert 'data-job="monthly_maintenance" data-status="failed"' in html
    assert "2026-03-01 00:00" in html and "5004 ms" in html
    assert "canceling statement due to lock timeout" in html
    assert 'data-job="daily_maintenance" data-status="succeeded"' in html
    assert "expired_tokens_deleted: 0" in html and "session_stats_rows: " in html


def test_the_job_queue_counts(staff):
    from procrastinate.contrib.django import app

    app.configure_task("send_mail").defer(
        to="someone@example.com", subject="s", template="password_changed", context={}
    )
    queue = staff.get(URL).context["queue"]
    assert (queue["waiting"], queue["due"], queue["running"], queue["failed"]) == (1, 1, 0, 0)


# --- backups (point-in-time recovery) -------------------------------------------------------


def _section(html: str) -> str:
    start = html.index('<section id="backups"')
    return html[start : html.index("</section>", start)]


def test_backups_in_order(staff, settings):
    settings.PITR_ENABLED = True
    runs = healthy_backups()
    response = staff.get(URL)
    assert _states(response)["Backups"] == "OK"
    alert = next(a for a in response.context["alerts"] if a.name == "Backups")
    assert alert.measured.startswith("last base backup 3.0 h ago, WAL received up to ")
    html = _section(response.content.decode())
    assert 'data-state="ok"' in html and "Backups: ok." in html
    end = datetime.fromisoformat(runs["backup_wal"].summary["last_backup_end"])
    assert f"ended {end:%Y-%m-%d %H:%M:%S} UTC; 7 kept; stale after 26 h" in html
    assert "3.0 h ago" in html
    assert "receiver streaming; 2.0\xa0KB still to write" in html
    assert f"<code>{SEGMENT}</code>" in html
    oldest = datetime.fromisoformat(runs["backup_wal"].summary["oldest_restorable"])
    assert f"{oldest:%Y-%m-%d %H:%M} → " in html
    assert 'id="backup-drill" data-status="succeeded"' in html
    assert "passed" in html and "1187 rows in 31 tables restored and verified in 42 s" in html
    assert "<code>witchcraft-20261207T040000Z.dump</code>, 3.0\xa0MB" in html
    assert "backups-off" not in html


def test_stale_backups_fire_and_say_why(staff, settings):
    settings.PITR_ENABLED = True
    settings.BACKUP_STALE_HOURS = 26
    settings.WAL_STALE_MINUTES = 5
    backup_run(
        "backup_wal",
        ago=timedelta(minutes=30),
        summary=wal_summary(
            base_age=timedelta(hours=30), behind=timedelta(minutes=30), receiver="stopped"
        ),
    )
    backup_run("backup_wal", ago=timedelta(minutes=1), status="failed", error="cron failed")
    response = staff.get(URL)
    assert _states(response)["Backups"] == "firing"
    problems = [
        "the last base backup is 30 h old (more than 26 h)",
        "WAL archiving is 30 min behind (more than 5 min)",
    ]
    alert = next(a for a in response.context["alerts"] if a.name == "Backups")
    assert alert.measured == "; ".join(problems)
    html = _section(response.content.decode())
    assert 'data-state="stale"' in html
    assert '<span class="flag">stale</span>: ' + "; ".join(problems) in html
    assert "receiver stopped" in html
    assert "the worker runs one weekly" in html  # no drill yet
    assert "Last logical dump:\n  none yet" in html


def test_backups_never_seen_are_stale(staff, settings):
    settings.PITR_ENABLED = True
    response = staff.get(URL)
    assert _states(response)["Backups"] == "firing"
    html = _section(response.content.decode())
    assert "no base backup has been taken; WAL archiving has not been seen working" in html
    assert '<span class="flag">none</span>' in html
    assert '<span class="flag">never seen</span>' in html


def test_backups_off_are_said_and_do_not_fire(staff, settings):
    settings.PITR_ENABLED = False
    healthy_backups()
    response = staff.get(URL)
    assert _states(response)["Backups"] == "OK"
    alert = next(a for a in response.context["alerts"] if a.name == "Backups")
    assert alert.measured == "off (PITR_ENABLED is false)"
    html = _section(response.content.decode())
    assert 'data-state="off"' in html
    assert 'id="backups-off"' in html and "<code>PITR_ENABLED</code> is false" in html
    assert 'id="backup-drill"' not in html
    # The logical dumps run whatever the setting.
    assert "<code>witchcraft-20261207T040000Z.dump</code>" in html


def test_a_failed_drill_shows_its_error_and_the_last_that_passed(staff, settings):
    settings.PITR_ENABLED = True
    passed = healthy_backups()["backup_drill"]
    backup_run(
        "backup_drill",
        ago=timedelta(hours=5),
        status=MaintenanceRun.Status.FAILED,
        error="the restored server did not start: port 54329 in use",
    )
    backup_run(
        "backup_logical",
        ago=timedelta(hours=1),
        status=MaintenanceRun.Status.FAILED,
        error="pg_dump: error: connection refused",
    )
    response = staff.get(URL)
    assert _states(response)["Backups"] == "OK"  # a failed drill is Prometheus' own alert
    html = _section(response.content.decode())
    assert 'id="backup-drill" data-status="failed"' in html
    assert "the restored server did not start: port 54329 in use" in html
    assert f"last passed {passed.started_at:%Y-%m-%d %H:%M:%S} UTC" in html
    assert 'id="backup-logical" data-status="failed"' in html
    assert "pg_dump: error: connection refused" in html


def test_members_never_see_the_backups(client, settings):
    settings.PITR_ENABLED = True
    healthy_backups()
    client.force_login(factories.UserFactory())
    response = client.get(URL)
    assert response.status_code == 404
    assert b"Backups" not in response.content
