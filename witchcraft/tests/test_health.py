"""/healthz: the database (503 when it does not answer), the worker's heartbeat and the last
maintenance runs (200 "degraded" when they are not well: a load balancer must not pull the web
server for them)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from witchcraft.models import MaintenanceRun
from witchcraft.testing.database import unreachable


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
        "failing": ["worker"],
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
    assert body["failing"] == ["worker"]
    assert body["database"] == "ok"


@pytest.mark.django_db
def test_the_worker_part_fails_on_its_own_when_its_heartbeat_is_late(client, settings):
    settings.WORKER_STALE_SECONDS = 300
    _heartbeat(301)
    assert client.get("/healthz?part=worker").status_code == 503
    assert client.get("/healthz?part=database").status_code == 200
    _heartbeat(1)
    response = client.get("/healthz?part=worker")
    assert response.status_code == 200
    assert response.json()["failing"] == []


@pytest.mark.django_db
def test_an_unknown_part_is_a_400(client):
    response = client.get("/healthz?part=%00")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


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
    assert client.get("/healthz?part=maintenance").status_code == 200

    _run("monthly_maintenance", status="failed", minutes_ago=5, error="canceling statement")
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["failing"] == ["maintenance"]
    assert client.get("/healthz?part=maintenance").status_code == 503
    assert body["maintenance"]["monthly_maintenance"]["status"] == "failed"
    assert body["maintenance"]["daily_maintenance"]["status"] == "succeeded"


@pytest.mark.django_db
def test_healthz_stays_cheap(client, django_assert_max_num_queries):
    _heartbeat(1)
    for minutes in range(50):
        _run("daily_maintenance", status="succeeded", minutes_ago=minutes)
    with django_assert_max_num_queries(3):
        client.get("/healthz")


def test_healthz_answers_503_naming_the_part_but_no_internals(client, django_db_blocker):
    with unreachable(django_db_blocker):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body == {
        "status": "error",
        "failing": ["database"],
        "database": "unavailable",
        "worker": {"last_heartbeat": None, "status": "unknown"},
        "maintenance": {},
    }
    # Not the driver's text, the host, the port or a socket path.
    text = response.content.decode()
    for leak in ("refused", "127.0.0.1", "port", "/", "connection"):
        assert leak not in text.replace('"failing"', "")


def test_the_metrics_credential_sees_why(client, django_db_blocker, settings):
    settings.METRICS_TOKEN = "m" * 40
    with unreachable(django_db_blocker):
        response = client.get("/healthz", HTTP_AUTHORIZATION="Bearer " + "m" * 40)
        wrong = client.get("/healthz", HTTP_AUTHORIZATION="Bearer " + "x" * 40)
    assert response.status_code == 503
    assert "refused" in response.json()["detail"]["database"]
    assert "detail" not in wrong.json()


def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
