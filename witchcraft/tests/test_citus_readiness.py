"""Readiness for a distributed PostgreSQL (Citus), checked on the plain one: the identity.

The policies run where the rows are. A distributed PostgreSQL forwards a literal
``SET LOCAL app.user_id = '42'`` to those nodes but not a ``set_config()`` call, and opens its
node connections as the current role. So: no SQL function and no module sets the identity with
``set_config()``; the identity is set by ``SET LOCAL`` (witchcraft/platform/identity_sql.py);
the runtime role logs in. Each rule is shown to fail on a deliberately broken object.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from witchcraft.platform import identity_sql, rls

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ["public", "auth", "archive"]
APPS = ("accounts", "agents", "billing", "usage", "witchcraft")
IDENTITY = ("role", *identity_sql.IDENTITY_SETTINGS)
# set_config('app.user_id', ...), pg_catalog.set_config ( 'role' , ...): any spacing or quoting.
SETS_IDENTITY = re.compile(
    r"set_config\s*\(\s*'(" + "|".join(re.escape(name) for name in IDENTITY) + r")'",
    re.IGNORECASE,
)


def functions_setting_identity() -> list[str]:
    """The functions of our schemas whose body sets an identity setting with set_config()."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.oid::regprocedure::text, p.prosrc FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY(%s)",
            [SCHEMAS],
        )
        return sorted(name for name, source in cursor.fetchall() if SETS_IDENTITY.search(source))


def modules_setting_identity(root: Path = ROOT) -> list[str]:
    """The project's modules (tests apart) that set an identity setting with set_config()."""
    found = []
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            parts = path.relative_to(root).parts
            if "tests" in parts or "migrations" in parts:
                continue
            if SETS_IDENTITY.search(path.read_text()):
                found.append(str(path.relative_to(root)))
    return found


def test_no_sql_function_sets_the_identity_with_set_config():
    assert functions_setting_identity() == []


def test_the_rule_finds_a_function_that_does():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION public.readiness_broken() RETURNS void LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_catalog.set_config( 'app.user_id', '1', true); END $$"
        )
    assert functions_setting_identity() == ["readiness_broken()"]


def test_no_module_sets_the_identity_with_set_config():
    assert modules_setting_identity() == []


def test_the_rule_finds_a_module_that_does(tmp_path):
    (tmp_path / "usage").mkdir()
    (tmp_path / "usage" / "sneaky.py").write_text(
        "cursor.execute(\"SELECT set_config('app.is_admin', 'true', true)\")\n"
    )
    (tmp_path / "usage" / "fine.py").write_text(
        "cursor.execute(\"SELECT set_config('lock_timeout', '2s', true)\")\n"
    )
    assert modules_setting_identity(tmp_path) == ["usage/sneaky.py"]


def test_the_identity_is_set_by_set_local_statements_with_quoted_values():
    statements = identity_sql.set_local(
        rls.APP_ROLE, {"app.user_id": "42", "app.request_id": "it's"}
    ).as_string(connection.connection)
    assert statements == (
        "SET LOCAL ROLE \"witchcraft_app\"; SET LOCAL app.user_id = '42'; "
        "SET LOCAL app.request_id = 'it''s'"
    )
    with pytest.raises(ValueError, match="not an identity setting"):
        identity_sql.set_local(rls.APP_ROLE, {"search_path": "evil"})


def test_an_identity_set_by_the_request_context_is_what_the_policies_read(django_user_model):
    user = django_user_model.objects.create(email="ready@example.com")
    with rls.user_context(user, request_id="req-'quoted'"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, auth.user_id(), current_setting('app.request_id'),"
            " auth.is_admin()"
        )
        assert cursor.fetchone() == ("witchcraft_app", user.pk, "req-'quoted'", False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('role')")
        assert cursor.fetchone()[0] == "none"  # restored on leaving the context


def test_the_runtime_role_logs_in_and_nothing_more():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s",
            [rls.APP_ROLE],
        )
        assert cursor.fetchone() == (True, False, False)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_session_logged_in_as_the_runtime_role_is_not_the_service_and_sees_nothing():
    """It can log in now; by that alone it claims no identity (before migration 0012 a session
    that had not switched role counted as the service context)."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create(email="hidden@example.com")
    params = connection.get_connection_params()
    own = psycopg.connect(
        host=params.get("host") or "127.0.0.1",
        port=params.get("port") or 5432,
        dbname=params["dbname"],
        user=rls.APP_ROLE,
        autocommit=True,
    )
    with own:
        assert own.execute(
            "SELECT session_user, auth.is_service(), auth.is_admin()"
        ).fetchone() == (
            rls.APP_ROLE,
            False,
            False,
        )
        assert own.execute("SELECT count(*) FROM users").fetchone()[0] == 0
