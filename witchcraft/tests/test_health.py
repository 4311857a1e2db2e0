"""/healthz: the database (503 when it does not answer), the worker's heartbeat and the last
maintenance runs (200 "degraded" when they are not well: a load balancer must not pull the web
server for them)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from witchcraft.models import MaintenanceRun


def _heartbeat(seconds_ago: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat)"
            " VALUES (now() - make_interval(secs => %s))",
            [seconds_ago],
        )


def _run(job: str, *, status: str, minutes_ago: int, error: str = "") -> MaintenanceRun:
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return MaintenanceRun.objects.create(
        job=job,
        source=MaintenanceRun.Source.SCHEDULE,
        scheduled_for=started.replace(second=0, microsecond=0),
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        duration_ms=2000,
        status=status,
        summary={"sessions_ended": 3} if status == "succeeded" else {},
        error=error,
    )


@pytest.mark.django_db
def test_healthz_is_degraded_but_200_when_no_worker_ever_ran(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "database": "ok",
        "worker": {"last_heartbeat": None, "status": "none"},
        "maintenance": {"daily_maintenance": None, "monthly_maintenance": None},
    }
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_is_ok_with_a_live_worker_and_good_runs(client):
    _heartbeat(5)
    daily = _run("daily_maintenance", status="succeeded", minutes_ago=90)
    _run("monthly_maintenance", status="succeeded", minutes_ago=60 * 24 * 3)
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["worker"]["status"] == "ok"
    beat = datetime.fromisoformat(body["worker"]["last_heartbeat"])
    assert timedelta(0) < datetime.now(UTC) - beat < timedelta(minutes=1)
    assert body["maintenance"]["daily_maintenance"] == {
        "started_at": daily.started_at.isoformat(),
        "finished_at": daily.finished_at.isoformat(),
        "scheduled_for": daily.scheduled_for.isoformat(),
        "status": "succeeded",
        "source": "schedule",
    }
    assert body["maintenance"]["monthly_maintenance"]["status"] == "succeeded"


@pytest.mark.django_db
def test_a_stale_worker_is_reported_and_degrades_without_a_503(client, settings):
    settings.WORKER_STALE_SECONDS = 300
    _heartbeat(301)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["worker"]["status"] == "stale"
    assert body["status"] == "degraded"
    assert body["database"] == "ok"


@pytest.mark.django_db
def test_the_newest_heartbeat_of_several_workers_counts(client):
    _heartbeat(3600)  # a worker killed an hour ago left its row
    _heartbeat(2)
    assert client.get("/healthz").json()["worker"]["status"] == "ok"


@pytest.mark.django_db
def test_the_last_run_failing_degrades_and_an_older_failure_does_not(client):
    _heartbeat(1)
    _run("daily_maintenance", status="failed", minutes_ago=60 * 25, error="lock timeout")
    _run("daily_maintenance", status="succeeded", minutes_ago=60)
    assert client.get("/healthz").json()["status"] == "ok"

    _run("monthly_maintenance", status="failed", minutes_ago=5, error="canceling statement")
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["maintenance"]["monthly_maintenance"]["status"] == "failed"
    assert body["maintenance"]["daily_maintenance"]["status"] == "succeeded"


@pytest.mark.django_db
def test_healthz_stays_cheap(client, django_assert_max_num_queries):
    _heartbeat(1)
    for minutes in range(50):
        _run("daily_maintenance", status="succeeded", minutes_ago=minutes)
    with django_assert_max_num_queries(3):
        client.get("/healthz")


def test_healthz_answers_503_naming_the_database_when_it_is_down(client, django_db_blocker):
    """Point the live connection at a port where nothing listens: a real failed connection."""
    with django_db_blocker.unblock():
        connection.close()
        saved = dict(connection.settings_dict)
        connection.settings_dict.update(HOST="127.0.0.1", PORT=1, EMBEDDED=False)
        try:
            response = client.get("/healthz")
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"].startswith("error: ")
    assert "refused" in body["database"]
    assert body["worker"] == {"last_heartbeat": None, "status": "unknown"}


def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
