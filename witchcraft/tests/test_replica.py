"""The read replica's parts that need no standby: its configuration, the router's limits, the
read-your-writes positions in a real cache (Redis and a process's memory), and which failures
send a read back to the primary. The standby itself: test_replica_live.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from django.core.cache import caches
from django.db import DatabaseError, OperationalError, connection
from django.test import override_settings

from usage.models import AIUsageDaily
from witchcraft.platform import replica
from witchcraft.platform.replica import positions, reads

ROOT = Path(__file__).resolve().parents[2]
SHOW_REPLICA = (
    "import json, django; django.setup(); from django.conf import settings; "
    "r = settings.DATABASES.get('replica'); "
    "print(json.dumps(r and {k: r.get(k) for k in ('HOST', 'PORT', 'NAME', 'OPTIONS', 'TEST',"
    " 'EMBEDDED', 'EMBEDDED_REPLICA')}))"
)
REDIS = {
    "default": {
        "BACKEND": "witchcraft.operations.metrics.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/14",
        "KEY_PREFIX": "replica-test",
    }
}


MEMORY = {"default": {"BACKEND": "witchcraft.operations.metrics.cache.LocMemCache"}}


def _settings(**changes: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="witchcraft.settings", DEBUG="true")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-c", SHOW_REPLICA],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_a_replica_url_there_is_no_replica():
    done = _settings(DATABASE_REPLICA_URL=None)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) is None


def test_a_replica_url_adds_a_read_only_alias_that_starts_as_the_runtime_role():
    done = _settings(
        DATABASE_URL="postgres://app:secret@primary.internal:5432/witchcraft",
        DATABASE_REPLICA_URL="postgres://app:secret@%2Fvar%2Frun%2Fstandby:5433/witchcraft",
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["HOST"] == "/var/run/standby" and shown["PORT"] == 5433
    assert shown["OPTIONS"] == {"connect_timeout": 2, "assume_role": "witchcraft_app"}
    assert shown["TEST"]["MIRROR"] == "default"  # a physical standby has the test database


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"DATABASE_URL": "postgres://u@h/db", "DATABASE_REPLICA_URL": "embedded"},
            "DATABASE_REPLICA_URL=embedded is the embedded server's standby",
        ),
        ({"DATABASE_REPLICA_URL": "mysql://u@h/db"}, "must name a PostgreSQL server"),
        ({"REPLICA_MAX_LAG_SECONDS": "0"}, "REPLICA_MAX_LAG_SECONDS must be between"),
        ({"REPLICA_CONNECT_TIMEOUT": "600"}, "REPLICA_CONNECT_TIMEOUT must be between"),
    ],
)
def test_a_wrong_replica_configuration_fails_at_once(changes, message):
    done = _settings(**changes)
    assert done.returncode != 0
    assert message in done.stderr


def test_the_router_sends_nothing_to_the_replica_outside_a_read():
    router = replica.AnalyticsRouter()
    assert router.db_for_read(AIUsageDaily) == "default"
    assert router.db_for_write(AIUsageDaily) == "default"
    assert router.allow_migrate("replica", "usage") is False  # never migrated: it replays
    assert router.allow_migrate("default", "usage") is None
    assert replica.read_alias() == "default"


@pytest.mark.django_db
def test_without_a_replica_a_read_runs_on_the_primary_and_tracks_nothing(rf):
    request = rf.get("/")
    assert not replica.configured()
    assert replica.read(request, lambda: connection.alias) == "default"
    assert not hasattr(request, "read_from")
    assert replica.wrote_in_transaction(42) is False  # no query without a replica


def test_wal_positions_are_numbers_in_wal_order():
    assert positions.lsn_number("0/0") == 0
    assert positions.lsn_number("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert positions.lsn_number("1/0") > positions.lsn_number("0/FFFFFFFF")


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_users_position_only_grows_even_under_parallel_writers(backend):
    cache_settings = (
        REDIS
        if backend == "redis"
        else {"default": {"BACKEND": "witchcraft.operations.metrics.cache.LocMemCache"}}
    )
    with override_settings(CACHES=cache_settings):
        caches["default"].delete("replica:written:7")
        assert positions.written(7) == 0
        values = list(range(1, 201))
        threads = [threading.Thread(target=positions.remember, args=(7, value)) for value in values]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert positions.written(7) == 200
        positions.remember(7, 5)  # an earlier position finishing late changes nothing
        assert positions.written(7) == 200
        assert positions.written(8) == 0
        caches["default"].delete("replica:written:7")


def _error(sqlstate_class) -> DatabaseError:
    """A Django error caused by the driver's error of that class, as Django raises them."""
    try:
        try:
            raise sqlstate_class("from the server")
        except psycopg.Error as driver:
            raise OperationalError(str(driver)) from driver
    except OperationalError as wrapped:
        return wrapped


def test_which_replica_failures_send_the_read_back_to_the_primary():
    errors = psycopg.errors
    assert reads._failure(_error(errors.SerializationFailure)) == reads.CONFLICT  # recovery
    assert reads._failure(_error(errors.AdminShutdown)) == reads.CONFLICT
    assert reads._failure(_error(errors.ConnectionFailure)) == reads.DOWN
    assert reads._failure(OperationalError("no server")) == reads.DOWN
    assert reads._failure(_error(errors.ReadOnlySqlTransaction)) == reads.WRITES
    # A real error of the query is not the replica's to hide.
    assert reads._failure(_error(errors.UndefinedTable)) is None
    assert reads._failure(_error(errors.DivisionByZero)) is None


@pytest.mark.django_db
def test_without_a_replica_the_monitoring_page_says_so_and_pages_say_no_as_of(client):
    from witchcraft.testing import factories

    client.force_login(factories.UserFactory(is_staff=True))
    page = client.get("/dashboard/monitoring/").content.decode()
    assert '<section id="replica" data-state="absent">' in page
    assert "DATABASE_REPLICA_URL" in page
    assert "Figures from the read replica" not in client.get("/dashboard/").content.decode()
