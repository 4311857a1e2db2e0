"""/healthz: the database (503 when it does not answer), the worker's heartbeat, the last
maintenance runs and the backups (200 "degraded" when they are not well: a load balancer must not
pull the web server for them)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from witchcraft.models import MaintenanceRun
from witchcraft.testing.backups import backup_run, healthy_backups, wal_summary
from witchcraft.testing.database import unreachable

BACKUP_OFF = {"status": "off", "problems": [], "last_base_backup": None, "wal_behind_seconds": None}


def _heartbeat(seconds_ago: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat)"
            " VALUES (now() - make_interval(secs => %s))",
            [seconds_ago],
        )


def _run(job: str, *, status: str, minutes_ago: int, error: str = "") -> MaintenanceRun:
    summary = {"sessions_ended": 3} if status == "succeeded" else {}
    return backup_run(
        job, ago=timedelta(minutes=minutes_ago), status=status, summary=summary, error=error
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
        "backup": BACKUP_OFF,
        "replica": {"status": "absent"},  # no DATABASE_REPLICA_URL: reported, never failing
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
    with django_assert_max_num_queries(4):
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
        "backup": {
            "status": "unknown",
            "problems": [],
            "last_base_backup": None,
            "wal_behind_seconds": None,
        },
        "replica": {"status": "unknown"},
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


# --- backups (point-in-time recovery) -------------------------------------------------------


@pytest.mark.django_db
def test_backups_in_order_are_ok(client, settings):
    settings.PITR_ENABLED = True
    _heartbeat(1)
    runs = healthy_backups()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert body["backup"]["status"] == "ok" and body["backup"]["problems"] == []
    assert body["backup"]["last_base_backup"] == runs["backup_wal"].summary["last_backup_end"]
    assert 35 <= body["backup"]["wal_behind_seconds"] < 120
    assert client.get("/healthz?part=backup").status_code == 200


@pytest.mark.django_db
def test_a_stale_base_backup_degrades_and_fails_the_backup_part(client, settings):
    settings.PITR_ENABLED = True
    settings.BACKUP_STALE_HOURS = 26
    _heartbeat(1)
    backup_run(
        "backup_wal", ago=timedelta(seconds=30), summary=wal_summary(base_age=timedelta(hours=27))
    )
    response = client.get("/healthz")
    assert response.status_code == 200  # the web check never fails for backups
    body = response.json()
    assert body["status"] == "degraded" and body["failing"] == ["backup"]
    assert body["backup"]["status"] == "stale"
    assert body["backup"]["problems"] == ["the last base backup is 27 h old (more than 26 h)"]
    assert client.get("/healthz?part=backup").status_code == 503
    assert client.get("/healthz?part=database").status_code == 200


@pytest.mark.django_db
def test_wal_archiving_that_stopped_fails_the_backup_part(client, settings):
    """The last successful WAL run received up to 20 minutes ago; later runs failed."""
    settings.PITR_ENABLED = True
    settings.WAL_STALE_MINUTES = 5
    _heartbeat(1)
    backup_run(
        "backup_wal", ago=timedelta(minutes=20), summary=wal_summary(behind=timedelta(minutes=20))
    )
    backup_run("backup_wal", ago=timedelta(minutes=1), status="failed", error="barman cron failed")
    body = client.get("/healthz").json()
    assert body["backup"]["status"] == "stale"
    assert body["backup"]["problems"] == ["WAL archiving is 20 min behind (more than 5 min)"]
    assert body["backup"]["wal_behind_seconds"] >= 20 * 60
    assert "backup" in body["failing"]
    assert client.get("/healthz?part=backup").status_code == 503


@pytest.mark.django_db
def test_backups_never_seen_working_are_stale(client, settings):
    settings.PITR_ENABLED = True
    body = client.get("/healthz").json()
    assert body["backup"] == {
        "status": "stale",
        "problems": [
            "no base backup has been taken",
            "WAL archiving has not been seen working",
        ],
        "last_base_backup": None,
        "wal_behind_seconds": None,
    }


@pytest.mark.django_db
def test_backups_off_never_fail(client, settings):
    settings.PITR_ENABLED = False
    _heartbeat(1)
    backup_run("backup_wal", ago=timedelta(days=3), summary=wal_summary(base_age=timedelta(days=4)))
    response = client.get("/healthz")
    assert response.json()["backup"] == BACKUP_OFF
    assert response.json()["failing"] == []
    assert client.get("/healthz?part=backup").status_code == 200


@pytest.mark.django_db
def test_healthz_stays_cheap_with_backups(client, settings, django_assert_max_num_queries):
    settings.PITR_ENABLED = True
    _heartbeat(1)
    healthy_backups()
    for minutes in range(1, 60):
        backup_run("backup_wal", ago=timedelta(minutes=minutes), summary=wal_summary())
    with django_assert_max_num_queries(4):
        assert client.get("/healthz").json()["backup"]["status"] == "ok"
