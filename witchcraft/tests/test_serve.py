"""`make serve`: the preflight, connection settings (persistent or pooled), the connection
budget check, the access log, and gunicorn itself serving /healthz, a static file and /metrics.

Settings are decided at import, so the variants are read in subprocesses started with the
environment under test.
"""

import json
import os
import re
import runpy
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.db import connection

from witchcraft.platform import serving
from witchcraft.platform.db_backend.base import DatabaseWrapper
from witchcraft.testing import factories
from witchcraft.testing.servers import (
    ROOT,
    clean_env,
    free_port,
    start_gunicorn,
    stop,
    wait_until_answers,
)

SHOW_DATABASE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "d = s.DATABASES['default']; "
    "print(json.dumps({'pool': d['OPTIONS'].get('pool'), 'age': d['CONN_MAX_AGE'], "
    "'checks': d['CONN_HEALTH_CHECKS']}))"
)


def _env(**changes: str) -> dict[str, str]:
    return clean_env(keep_database=True, **changes)


def _python(args: list[str], **changes: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_env(**changes),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _database(**changes: str) -> dict:
    done = _python(["-c", SHOW_DATABASE], SECRET_KEY=secrets.token_urlsafe(50), **changes)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- preflight: no production serving without a real key ------------------------------------


def test_make_serve_refuses_to_start_without_a_secret_key():
    done = _python(["-m", "witchcraft.platform.serving", "preflight"], SECRET_KEY="")
    assert done.returncode == 1
    assert done.stderr.strip() == serving.MISSING_KEY
    assert "SECRET_KEY" in done.stderr and ".env" in done.stderr


def test_make_serve_refuses_the_generated_development_key():
    dev_key = settings.DEV_SECRET_KEY_PREFIX + secrets.token_urlsafe(50)
    done = _python(["-m", "witchcraft.platform.serving", "preflight"], SECRET_KEY=dev_key)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("make serve: witchcraft.E001: ")


def test_make_serve_starts_with_a_real_key_even_when_env_says_debug():
    """`make serve` forces DEBUG=false over .env's DEBUG=true; a real key is all it needs."""
    done = _python(
        ["-m", "witchcraft.platform.serving", "preflight"], SECRET_KEY=secrets.token_urlsafe(50)
    )
    assert done.returncode == 0, done.stderr


def test_the_makefile_serves_with_debug_off_after_the_preflight():
    recipe = (ROOT / "Makefile").read_text().split("\nserve:", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in recipe.splitlines()[1:]]
    assert lines[0] == "@DEBUG=false $(PY) -m witchcraft.platform.serving preflight"
    assert all(line.lstrip("@").startswith("DEBUG=false ") for line in lines)
    assert any("collectstatic --noinput" in line for line in lines)
    assert lines[-1].endswith("gunicorn -c witchcraft/gunicorn.conf.py")


# --- connections: kept, or pooled -----------------------------------------------------------


def test_production_keeps_connections_for_a_minute_and_checks_them():
    assert _database(DEBUG="false") == {"pool": None, "age": 60, "checks": True}
    assert _database(DEBUG="false", CONN_MAX_AGE="5")["age"] == 5
    assert _database(DEBUG="true")["age"] == 0  # runserver's threads come and go


def test_database_pool_builds_psycopgs_pool_from_the_settings():
    assert _database(DEBUG="false", DATABASE_POOL="true") == {
        "pool": {"min_size": 2, "max_size": 20, "timeout": 30},
        "age": 0,  # the pool keeps the connections; Django refuses persistent ones with it
        "checks": True,
    }
    assert _database(
        DEBUG="false",
        DATABASE_POOL="true",
        DATABASE_POOL_SIZE="8",
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_TIMEOUT="5",
        CONN_MAX_AGE="60",
    ) == {"pool": {"min_size": 1, "max_size": 8, "timeout": 5}, "age": 0, "checks": True}


@pytest.fixture
def pooled_default(django_db_blocker):
    """The default connection drawn from a psycopg pool of one (so the next request gets the
    very connection the last one gave back)."""
    with django_db_blocker.unblock():
        connection.close()
    saved_options, saved_age = (
        connection.settings_dict["OPTIONS"],
        connection.settings_dict["CONN_MAX_AGE"],
    )
    connection.settings_dict["OPTIONS"] = {
        **saved_options,
        "pool": {"min_size": 1, "max_size": 1, "timeout": 10},
    }
    connection.settings_dict["CONN_MAX_AGE"] = 0
    try:
        yield connection
    finally:
        with django_db_blocker.unblock():
            connection.close()
            connection.close_pool()
        connection.settings_dict["OPTIONS"] = saved_options
        connection.settings_dict["CONN_MAX_AGE"] = saved_age


def _session_state() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid(), current_user, session_user,"
            " coalesce(current_setting('app.user_id', true), ''),"
            " coalesce(current_setting('app.is_admin', true), ''),"
            " coalesce(current_setting('app.is_service', true), ''),"
            " coalesce(current_setting('app.request_id', true), ''),"
            " coalesce(current_setting('app.ip', true), '')"
        )
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_pooled_connection_comes_back_clean_after_a_request(pooled_default, client):
    member = factories.UserFactory()
    session = factories.AgentSessionFactory(user=member)
    connection.close()  # back to the pool
    pid, owner, *_ = _session_state()
    connection.close()

    client.force_login(member)
    seen = {}

    def record(execute, sql, params, many, context):
        if "agent_sessions" in sql and "current_user" not in sql:
            with context["connection"].cursor() as cursor:
                cursor.execute(
                    "SELECT pg_backend_pid(), current_user, current_setting('app.user_id')"
                )
                seen["during"] = cursor.fetchone()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = client.get(f"/me/sessions/{session.pk}/")
    assert response.status_code == 200
    # The request ran on the pooled connection as the runtime role, with the member's id ...
    assert seen["during"] == (pid, "witchcraft_app", str(member.pk))
    connection.close()  # what the end of a request does with CONN_MAX_AGE=0: back to the pool

    # ... and the next borrower of that same connection is the owner again, with no identity.
    assert pooled_default.pool.get_stats()["pool_size"] == 1
    assert _session_state() == (pid, owner, owner, "", "", "", "", "")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_pool_resets_a_role_left_behind(pooled_default):
    """The second lock: even a session-level SET ROLE (which no request makes) never reaches
    the next borrower."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (owner,) = cursor.fetchone()
        cursor.execute("SET ROLE witchcraft_app")
    connection.close()
    assert _session_state()[1] == owner


# --- the connection budget (witchcraft.W001) -------------------------------------------------


def _budget_warnings(*, pool: bool) -> list:
    options = {**connection.settings_dict["OPTIONS"]}
    if pool:
        options["pool"] = {"max_size": settings.DATABASE_POOL_SIZE}
    wrapper = DatabaseWrapper({**connection.settings_dict, "OPTIONS": options}, alias="budget")
    return [issue for issue in wrapper.validation.check() if issue.id == "witchcraft.W001"]


def test_the_budget_check_warns_when_workers_could_exceed_max_connections(settings):
    settings.DATABASE_MAX_CONNECTIONS = 100
    settings.DATABASE_POOL_SIZE = 20
    settings.WEB_THREADS = 1
    settings.WEB_CONCURRENCY = 5
    assert _budget_warnings(pool=True) == []  # 5 x 20 = 100: at the limit, not over
    settings.WEB_CONCURRENCY = 6
    (warning,) = _budget_warnings(pool=True)
    assert warning.msg.startswith("6 web workers x 20 connections each")
    assert "= 120 connections" in warning.msg and "DATABASE_POOL_SIZE" in warning.hint
    # Without a pool: one persistent connection per thread.
    assert _budget_warnings(pool=False) == []
    settings.WEB_THREADS = 17
    (warning,) = _budget_warnings(pool=False)
    assert "= 102 connections" in warning.msg and "WEB_THREADS" in warning.hint


def test_the_budget_counts_the_default_workers_when_none_are_configured(settings):
    settings.WEB_CONCURRENCY = 0
    settings.WEB_THREADS = 1
    settings.DATABASE_POOL_SIZE = 100 // serving.default_workers() + 1
    assert len(_budget_warnings(pool=True)) == 1
    assert 1 <= serving.default_workers() <= serving.MAX_DEFAULT_WORKERS
    assert serving.default_workers(cpus=2) == 5
    assert serving.default_workers(cpus=64) == serving.MAX_DEFAULT_WORKERS


def test_migrate_and_check_database_report_the_budget(django_db_setup, django_db_blocker):
    """`make serve` runs migrate, whose checks include the database backend's."""
    with django_db_blocker.unblock():
        database = _database_env()
    done = _python(
        ["manage.py", "check", "--database", "default"],
        **database,
        SECRET_KEY=secrets.token_urlsafe(50),
        DEBUG="false",
        DATABASE_POOL="true",
        WEB_CONCURRENCY="9",
    )
    assert done.returncode == 0, done.stderr
    assert "witchcraft.W001" in done.stderr
    assert "9 web workers x 20 connections each" in done.stderr


# --- the access log ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn_conf():
    return runpy.run_path(str(ROOT / "witchcraft" / "gunicorn.conf.py"))


def test_the_config_takes_workers_threads_and_bind_from_the_environment(gunicorn_conf):
    assert gunicorn_conf["wsgi_app"] == "witchcraft.wsgi:application"
    assert gunicorn_conf["accesslog"] == "-"
    assert "%(U)s" in gunicorn_conf["access_log_format"]
    assert "%(r)s" not in gunicorn_conf["access_log_format"]  # the request line has the query
    assert "%(q)s" not in gunicorn_conf["access_log_format"]
    done = _python(
        [
            "-c",
            "import runpy, json; c = runpy.run_path('witchcraft/gunicorn.conf.py'); "
            "print(json.dumps([c['bind'], c['workers'], c['threads'], c['timeout']]))",
        ],
        WEB_CONCURRENCY="3",
        WEB_THREADS="4",
        HOST="0.0.0.0",
        PORT="9001",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [["0.0.0.0:9001"], 3, 4, 60]


@pytest.mark.django_db
def test_mailed_tokens_are_masked_in_logged_paths(gunicorn_conf):
    redact = gunicorn_conf["redact_path"]
    assert redact("/auth/password-reset/Zm9vYmFy-secret/") == "/auth/password-reset/[redacted]/"
    assert redact("/auth/verify/Zm9vYmFy-secret/") == "/auth/verify/[redacted]/"
    assert redact("/auth/verify/resend/") == "/auth/verify/resend/"
    assert redact("/me/sessions/123/") == "/me/sessions/123/"
    assert redact("/no/such/path/") == "/no/such/path/"


@pytest.mark.django_db
def test_djangos_request_log_masks_them_too(gunicorn_conf):
    import logging

    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "%s: %s",
        ("Bad Request", "/auth/password-reset/Zm9vYmFy-secret/"),
        None,
    )
    assert gunicorn_conf["SecretPathFilter"]().filter(record)
    assert record.getMessage() == "Bad Request: /auth/password-reset/[redacted]/"


# --- gunicorn, for real ------------------------------------------------------------------------


def _database_env() -> dict[str, str]:
    """The test database for a subprocess: libpq's PGHOST / PGPORT carry the host (for the
    embedded server, its socket directory), a URL without a host the rest."""
    params = connection.get_connection_params()
    user = quote(params.get("user") or "", safe="")
    password = params.get("password")
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    return {
        "DATABASE_URL": f"postgres://{credentials}@/{params['dbname']}",
        "PGHOST": str(params.get("host") or "127.0.0.1"),
        "PGPORT": str(params.get("port") or 5432),
    }


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    if not wait_until_answers(url, process):
        pytest.fail(f"gunicorn did not answer ({process.poll()}):\n{log.read_text()[-3000:]}")


@pytest.fixture
def served(django_db_setup, django_db_blocker, tmp_path, collected_static):
    """gunicorn on a free port, two workers, DEBUG off, against the test database."""
    with django_db_blocker.unblock():
        database = _database_env()
    port = free_port()
    token = secrets.token_urlsafe(24)
    log = tmp_path / "gunicorn.log"
    env = _env(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        **database,
        ALLOWED_HOSTS="127.0.0.1",
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        METRICS_TOKEN=token,
        TRUSTED_PROXIES="127.0.0.1",  # the TLS proxy on this machine
        WITCHCRAFT_DATA_DIR=str(tmp_path / "data"),
    )
    process = start_gunicorn(env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/healthz", process, log)
        yield {
            "base": base,
            "token": token,
            "log": log,
            "process": process,
            "data": tmp_path / "data",
            "static": collected_static,
        }
    finally:
        stop(process)


def test_gunicorn_serves_health_static_files_and_metrics_with_debug_off(served):
    base = served["base"]
    health = requests.get(f"{base}/healthz?token=never-logged", timeout=10)
    assert health.json()["database"] == "ok"
    # 200 whether the worker runs or not ("degraded"): only a database that is down is a 503.
    assert health.status_code == 200
    assert health.json()["status"] in ("ok", "degraded")

    # DEBUG is off: plain HTTP is sent to HTTPS, except /healthz (above) and /metrics.
    assert requests.get(f"{base}/auth/login/", timeout=10, allow_redirects=False).status_code == 301
    # Behind the TLS proxy (TRUSTED_PROXIES: gunicorn trusts its X-Forwarded-Proto): the login page,
    # and a static file under its hashed name, served by WhiteNoise with a far-future expiry.
    proxied = {"X-Forwarded-Proto": "https"}
    login = requests.get(f"{base}/auth/login/", headers=proxied, timeout=10)
    assert login.status_code == 200
    assert "Strict-Transport-Security" in login.headers
    hashed = served["static"]["admin/css/base.css"]
    static = requests.get(f"{base}/static/{hashed}", headers=proxied, timeout=10)
    assert static.status_code == 200
    assert static.headers["Content-Type"].startswith("text/css")
    assert "immutable" in static.headers["Cache-Control"]
    assert static.content == (ROOT / "staticfiles" / hashed).read_bytes()

    # /metrics: hidden without the token; with it, every worker's requests added up.
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 404
    for _ in range(20):
        requests.get(f"{base}/healthz", timeout=10)
    metrics = requests.get(
        f"{base}/metrics", headers={"Authorization": f"Bearer {served['token']}"}, timeout=10
    )
    assert metrics.status_code == 200
    counted = re.search(
        r'^witchcraft_http_requests_total\{method="GET",route="healthz",status="2xx"\} (\S+)$',
        metrics.text,
        re.M,
    )
    assert counted and float(counted.group(1)) >= 21, metrics.text[:2000]
    assert re.search(r"^witchcraft_key_metrics_up 1\.0$", metrics.text, re.M)
    folders = list((served["data"] / "metrics").iterdir())
    assert [folder.name for folder in folders] == [str(served["process"].pid)]
    assert any(folders[0].glob("counter_*.db"))  # the workers' shared files

    # The access log: paths without query strings, mailed tokens masked.
    requests.get(f"{base}/auth/verify/a-mailed-secret-token/", headers=proxied, timeout=10)
    # Written after the answer: wait for the access line itself (Django's own "Bad Request"
    # line names the path too, and may come first).
    log = _log_with(served["log"], '"GET /auth/verify/')
    assert '"GET /healthz HTTP/1.1" 200' in log
    assert "never-logged" not in log
    assert "a-mailed-secret-token" not in log
    assert '"GET /auth/verify/[redacted]/ HTTP/1.1"' in log

    # A clean stop: the master removes its folder of metric files.
    process = served["process"]
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not folders[0].exists()
    assert "Traceback" not in served["log"].read_text()


def _log_with(path, text: str, seconds: float = 30) -> str:
    """The access log once it holds ``text`` (gunicorn writes a line after the answer is sent,
    so a fixed pause was sometimes too short on a busy machine)."""
    deadline = time.monotonic() + seconds
    while text not in (log := path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log
