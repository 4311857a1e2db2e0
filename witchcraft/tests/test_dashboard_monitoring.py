"""/dashboard/monitoring/: the seed's key metrics and alert states."""

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.urls import reverse

from accounts.models import AuditLog, User
from billing.models import UserQuota
from usage.models import AIUsageDaily
from witchcraft import monitoring
from witchcraft.testing import factories

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
    assert response.context["quotas"]["share_warning"] == 0.5


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


def test_error_rate_and_usage_metrics(staff):
    _daily(requests=90, errors=3, latency_ms=100)
    _daily(requests=10, errors=3, latency_ms=1000)
    response = staff.get(URL)
    assert _states(response)["High error rate"] == "firing"  # 6 %
    today = response.context["today"]
    assert today["users"] == 2 and today["requests"] == 100
    assert today["avg_latency_ms"] == 190
    assert today["requests_per_second"] > 0
    assert "6.0 % (6 of 100)" in response.content.decode()


def test_a_low_error_rate_is_ok(staff):
    _daily(requests=100, errors=1)
    assert _states(staff.get(URL))["High error rate"] == "OK"


def test_database_size_against_capacity(staff, settings):
    settings.DATABASE_CAPACITY_BYTES = 1024
    assert _states(staff.get(URL))["Database size"] == "firing"


def test_pg_stat_statements_missing_is_said(staff):
    response = staff.get(URL)
    if response.context["slow"]["statements"] is None:
        assert b"pg_stat_statements is not available" in response.content


@pytest.mark.parametrize("count", [1, 40])
def test_query_count_is_bounded(staff, django_assert_max_num_queries, count):
    for _ in range(count):
        _quota("0.9")
        _daily(requests=5, errors=0)
    with django_assert_max_num_queries(25):
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
            today={"error_rate": 0.0, "errors": 0, "requests": 0},
            sizes={"share": 0.0, "capacity": monitoring.GIB},
            slow=slow,
        )
    }
    assert states["Slow queries"] == "firing"
    assert response.context["slow"]["count"] >= 1
    assert b"pg_sleep" in response.content


def test_the_monitoring_functions_are_for_staff_only(user):
    from django.db import DatabaseError, connection, transaction

    from witchcraft import rls

    for sql in (
        "SELECT * FROM monitoring_connections()",
        "SELECT * FROM monitoring_slow_queries(1, 10)",
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
    from witchcraft import maintenance
    from witchcraft.models import MaintenanceRun

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
