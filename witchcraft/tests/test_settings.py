"""Settings come from the environment; bad configuration fails at once, in one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from witchcraft.platform import checks

ROOT = Path(__file__).resolve().parents[2]
SHOW_DB = (
    "import json, django; django.setup(); from django.conf import settings; "
    "d = settings.DATABASES['default']; "
    "print(json.dumps({k: d.get(k) for k in ('ENGINE', 'NAME', 'HOST', 'PORT', 'EMBEDDED')}))"
)


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="witchcraft.settings", DEBUG="true")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _python(code: str, **changes: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(**changes),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _manage(*args: str, **changes: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(**changes),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_database_url_settings_fall_back_to_the_embedded_server():
    done = _python(SHOW_DB, DATABASE_URL=None)
    db = json.loads(done.stdout)
    assert db["EMBEDDED"] is True
    assert db["ENGINE"] == "witchcraft.platform.db_backend"
    assert db["NAME"] == "witchcraft"


def test_database_url_wins():
    done = _python(SHOW_DB, DATABASE_URL="postgres://someone:pw@db.example.com:6543/prod")
    db = json.loads(done.stdout)
    assert db == {
        "ENGINE": "witchcraft.platform.db_backend",
        "NAME": "prod",
        "HOST": "db.example.com",
        "PORT": 6543,
        "EMBEDDED": False,
    }


def test_a_database_url_that_is_not_postgresql_is_refused():
    done = _manage("migrate", DATABASE_URL="sqlite:///tmp/x.db")
    assert done.returncode == 2
    assert "must name a PostgreSQL server" in done.stderr


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgres://postgres@127.0.0.1:1/witchcraft", "Connection refused"),
        ("postgres://postgres@no-such-host.invalid:5432/witchcraft", "failed to resolve host"),
    ],
)
def test_an_unreachable_server_fails_at_once_in_one_line(url, reason):
    done = _manage("migrate", DATABASE_URL=url)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    host = url.split("@")[1].split("/")[0]
    assert host in lines[0]
    assert reason in lines[0]
    assert "Traceback" not in done.stderr


def test_a_refused_login_fails_at_once_in_one_line(django_db_setup, django_db_blocker):
    from django.db import connection

    with django_db_blocker.unblock():
        connection.ensure_connection()
        params = connection.get_connection_params()
        connection.close()
    host, port = params.get("host") or "localhost", params.get("port") or 5432
    socket = host.startswith("/")
    url = (
        f"postgres://no_such_role@{host.replace('/', '%2F')}:{port}/witchcraft"
        if socket
        else f"postgres://no_such_role@{host}:{port}/witchcraft"
    )
    done = _manage("migrate", DATABASE_URL=url)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert 'role "no_such_role" does not exist' in done.stderr


def test_production_refuses_to_start_without_a_secret_key():
    done = _manage("check", DEBUG="false", SECRET_KEY=None)
    assert done.returncode == 2
    assert "SECRET_KEY is not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_development_generates_a_secret_key_once(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SECRET_KEY)"
    )
    first = _python(code, SECRET_KEY=None, WITCHCRAFT_DATA_DIR=str(tmp_path)).stdout.strip()
    second = _python(code, SECRET_KEY=None, WITCHCRAFT_DATA_DIR=str(tmp_path)).stdout.strip()
    assert first == second
    assert first.startswith("witchcraft-dev-")
    assert len(first) > 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_the_check_refuses_debug_off_with_the_development_key():
    with override_settings(DEBUG=False, SECRET_KEY="witchcraft-dev-" + "x" * 50):
        errors = checks.check_secret_key(None)
    assert [e.id for e in errors] == ["witchcraft.E001"]
    assert errors[0].msg == checks.E001
    with override_settings(DEBUG=False, SECRET_KEY="a-real-production-key-" + "y" * 40):
        assert checks.check_secret_key(None) == []
    with override_settings(DEBUG=True, SECRET_KEY="witchcraft-dev-" + "x" * 50):
        assert checks.check_secret_key(None) == []
