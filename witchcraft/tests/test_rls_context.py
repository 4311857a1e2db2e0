"""witchcraft.platform.rls: the context managers and the middleware that set the database
identity."""

import secrets

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.models import AccessToken
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

# Everything the contexts set, as the database reports it.
STATE_SQL = """
    SELECT current_user::text, current_setting('role'),
           coalesce(current_setting('app.user_id', true), ''),
           coalesce(current_setting('app.is_admin', true), ''),
           coalesce(current_setting('app.is_service', true), ''),
           coalesce(current_setting('app.actor_id', true), ''),
           coalesce(current_setting('app.request_id', true), ''),
           coalesce(current_setting('app.ip', true), ''),
           auth.user_id(), auth.is_admin(), auth.is_service()
"""
STATE_KEYS = (
    "current_user",
    "role",
    "app.user_id",
    "app.is_admin",
    "app.is_service",
    "app.actor_id",
    "app.request_id",
    "app.ip",
    "auth.user_id",
    "auth.is_admin",
    "auth.is_service",
)


def _state() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(STATE_SQL)
        return dict(zip(STATE_KEYS, cursor.fetchone(), strict=True))


def _one(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _user(**fields):
    return factories.UserFactory(password=None, **fields)


def _token_sql() -> tuple[str, list]:
    """An INSERT the runtime role may run for the signed-in user (their own access token)."""
    token_hash = secrets.token_hex(32)
    return (
        "INSERT INTO access_tokens (user_id, name, token_hash, prefix, scopes, expires_at)"
        " VALUES (auth.user_id(), 'probe', %s, 'wc_', '{}', now() + interval '1 day')",
        [token_hash],
    )


class Boom(Exception):
    pass


# --- the context managers ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_contexts_refuse_to_run_outside_a_transaction():
    user = _user()
    assert not connection.in_atomic_block
    before = _state()
    for context in (
        rls.identity_context(rls.Identity(user_id=user.pk)),
        rls.user_context(user),
        rls.user_context(AnonymousUser()),
        rls.service_context(),
    ):
        with pytest.raises(rls.RLSContextError), context:
            pytest.fail("the block must not run")  # pragma: no cover
    assert _state() == before
    assert before["role"] == "none"


def test_a_user_context_runs_as_the_runtime_role_with_the_users_settings():
    user, staff = _user(), _user(is_staff=True)
    with (
        transaction.atomic(),
        rls.user_context(user, actor=staff, request_id="req-1", ip="10.0.0.7"),
    ):
        state = _state()
    assert state == {
        "current_user": rls.APP_ROLE,
        "role": rls.APP_ROLE,
        "app.user_id": str(user.pk),
        "app.is_admin": "false",
        "app.is_service": "false",
        "app.actor_id": str(staff.pk),
        "app.request_id": "req-1",
        "app.ip": "10.0.0.7",
        "auth.user_id": user.pk,
        "auth.is_admin": False,
        "auth.is_service": False,
    }


@pytest.mark.parametrize(
    ("fields", "admin"),
    [({"is_staff": True}, True), ({"is_staff": True, "is_active": False}, False), ({}, False)],
)
def test_only_active_staff_are_admins(fields, admin):
    user = _user(**fields)
    with transaction.atomic(), rls.user_context(user):
        assert _state()["auth.is_admin"] is admin


def test_an_anonymous_context_has_no_user():
    with transaction.atomic(), rls.user_context(AnonymousUser()):
        state = _state()
    assert state["current_user"] == rls.APP_ROLE
    assert (state["app.user_id"], state["auth.user_id"], state["auth.is_admin"]) == (
        "",
        None,
        False,
    )


def test_a_service_context_acts_for_everyone():
    staff = _user(is_staff=True)
    with transaction.atomic(), rls.service_context(actor=staff):
        state = _state()
    assert state["current_user"] == rls.APP_ROLE
    assert state["auth.user_id"] is None
    assert state["auth.is_service"] is True
    assert state["auth.is_admin"] is True
    assert state["app.actor_id"] == str(staff.pk)
    assert state["app.request_id"].startswith("job-")


def test_the_previous_state_is_restored_after_the_block():
    user = _user()
    with transaction.atomic():
        before = _state()
        assert before["current_user"] != rls.APP_ROLE
        with rls.user_context(user, request_id="inner"):
            assert _state()["current_user"] == rls.APP_ROLE
        assert _state() == before
        # Also a value that was set before the context (here by hand) comes back.
        _one("SELECT set_config('app.request_id', 'outer', true)")
        with rls.user_context(user, request_id="inner"):
            assert _state()["app.request_id"] == "inner"
        assert _state()["app.request_id"] == "outer"


def test_a_service_context_inside_a_user_context_restores_the_user_context():
    user = _user()
    with transaction.atomic(), rls.user_context(user, request_id="req-outer"):
        outer = _state()
        with rls.service_context(request_id="job-inner"):
            inner = _state()
            assert inner["auth.is_service"] is True
            assert inner["auth.user_id"] is None
            assert inner["app.request_id"] == "job-inner"
            assert inner["current_user"] == rls.APP_ROLE
        assert _state() == outer
        assert outer["auth.user_id"] == user.pk
        assert outer["auth.is_service"] is False


def test_an_exception_inside_the_block_rolls_the_identity_back():
    user = _user()
    with transaction.atomic():
        before = _state()
        with pytest.raises(Boom), rls.user_context(user):
            assert _state()["auth.user_id"] == user.pk
            raise Boom
        assert _state() == before


def test_a_database_error_inside_the_block_leaves_a_usable_transaction_as_before():
    user = _user()
    with transaction.atomic():
        before = _state()
        with pytest.raises(DatabaseError, match="permission denied"), rls.user_context(user):
            _one("UPDATE users SET is_staff = true WHERE id = %s RETURNING id", [user.pk])
        assert _state() == before
        assert _one("SELECT count(*) FROM users WHERE id = %s", [user.pk]) == 1


def test_a_rolled_back_block_undoes_its_writes_and_its_identity():
    user = _user()
    sql, params = _token_sql()
    with transaction.atomic():
        before = _state()
        with rls.user_context(user):
            _one(sql + " RETURNING id", params)
            transaction.set_rollback(True)
        assert _state() == before
    assert not AccessToken.objects.filter(token_hash=params[0]).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_connection_used_for_a_user_then_anonymous_shows_the_second_nothing():
    """Real commits, one connection, two successive requests' worth of contexts."""
    a, b = _user(), _user()
    session_a = factories.AgentSessionFactory(user=a)
    session_b = factories.AgentSessionFactory(user=b)
    pid = _one("SELECT pg_backend_pid()")

    def visible_sessions(who) -> set[int]:
        with transaction.atomic(), rls.user_context(who):
            assert _one("SELECT pg_backend_pid()") == pid
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM agent_sessions")
                return {row[0] for row in cursor.fetchall()}

    assert visible_sessions(a) == {session_a.pk}
    assert visible_sessions(AnonymousUser()) == set()
    assert visible_sessions(b) == {session_b.pk}
    assert visible_sessions(AnonymousUser()) == set()
    # Between transactions the settings read '' (not NULL) on a reused connection, and the
    # identity functions still say "nobody".
    assert not connection.in_atomic_block
    state = _state()
    assert state["role"] == "none"
    assert state["current_user"] != rls.APP_ROLE
    assert _one("SELECT current_setting('app.user_id', true)") == ""
    assert state["auth.user_id"] is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_requests_identity_is_set_in_one_round_trip_and_ends_with_its_transaction():
    """The middleware's context: nothing to read first, nothing to restore."""
    a = _user()
    identity = rls.user_identity(a, request_id="req-1", ip="10.0.0.7")
    with CaptureQueriesContext(connection) as queries, rls.transaction_identity(identity):
        state = _state()
    assert (state["current_user"], state["auth.user_id"]) == (rls.APP_ROLE, a.pk)
    assert (state["app.request_id"], state["app.ip"], state["app.is_service"]) == (
        "req-1",
        "10.0.0.7",
        "false",
    )
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 4, statements  # BEGIN, the identity, _state(), COMMIT
    # Literal SET LOCAL statements (what a distributed PostgreSQL forwards to its nodes).
    assert statements[1].startswith('SET LOCAL ROLE "witchcraft_app"; SET LOCAL app.user_id = ')
    assert not connection.in_atomic_block
    after = _state()
    assert after["role"] == "none" and after["auth.user_id"] is None


def test_a_requests_identity_inside_an_open_transaction_restores_what_it_found():
    a = _user()
    with transaction.atomic(), rls.service_context():
        before = _state()
        with rls.transaction_identity(rls.user_identity(a)):
            assert _state()["auth.user_id"] == a.pk
        assert _state() == before


# --- the middleware ---------------------------------------------------------------------------


def _probe(seen: list[dict], status: int = 200, sql: tuple[str, list] | None = None):
    def get_response(request):
        if sql is not None:
            _one(sql[0] + " RETURNING id", sql[1])
        state = _state()
        state["pid"] = _one("SELECT pg_backend_pid()")
        state["in_atomic_block"] = connection.in_atomic_block
        with connection.cursor() as cursor:
            cursor.execute("SELECT user_id FROM agent_sessions")
            state["sessions_of"] = {row[0] for row in cursor.fetchall()}
        seen.append(state)
        return HttpResponse(status=status)

    return get_response


def _request(user, path: str = "/probe", **headers):
    request = RequestFactory().get(path, **headers)
    request.user = user
    return request


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_middleware_sets_each_requests_identity_on_a_reused_connection():
    a, b = _user(), _user()
    factories.AgentSessionFactory(user=a)
    factories.AgentSessionFactory(user=b)
    seen: list[dict] = []
    middleware = rls.RowLevelSecurityMiddleware(_probe(seen))

    response = middleware(_request(a, HTTP_X_REQUEST_ID="req-a"))
    assert response["X-Request-ID"] == "req-a"
    response = middleware(_request(AnonymousUser()))
    assert len(response["X-Request-ID"]) == 32  # one made up when the client sent none

    first, second = seen
    assert first["pid"] == second["pid"]
    assert first["in_atomic_block"] and second["in_atomic_block"]
    assert (first["current_user"], first["auth.user_id"]) == (rls.APP_ROLE, a.pk)
    assert (first["app.request_id"], first["app.ip"]) == ("req-a", "127.0.0.1")
    assert first["sessions_of"] == {a.pk}
    assert (second["current_user"], second["auth.user_id"]) == (rls.APP_ROLE, None)
    assert second["app.request_id"] == response["X-Request-ID"]
    assert second["sessions_of"] == set()
    assert not connection.in_atomic_block
    assert _state()["role"] == "none"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_middleware_commits_successes_and_rolls_back_server_errors():
    a = _user()
    outcomes = {}
    for status in (200, 500, 503, 404):
        sql = _token_sql()
        rls.RowLevelSecurityMiddleware(_probe([], status=status, sql=sql))(_request(a))
        outcomes[status] = AccessToken.objects.filter(token_hash=sql[1][0], user=a).exists()
    assert outcomes == {200: True, 500: False, 503: False, 404: True}

    sql = _token_sql()

    def crash(request):
        _one(sql[0] + " RETURNING id", sql[1])
        raise Boom

    with pytest.raises(Boom):
        rls.RowLevelSecurityMiddleware(crash)(_request(a))
    assert not AccessToken.objects.filter(token_hash=sql[1][0]).exists()
    assert not connection.in_atomic_block
    assert _state()["role"] == "none"


def test_exempt_paths_run_without_an_identity():
    seen: list[dict] = []
    rls.RowLevelSecurityMiddleware(_probe(seen))(_request(AnonymousUser(), path="/healthz"))
    assert seen[0]["current_user"] != rls.APP_ROLE
    assert seen[0]["role"] == "none"


def test_the_middleware_resolves_the_lazy_user_before_switching_role():
    """request.user is lazy: it must be loaded as the migration role (users is RLS-protected)."""
    a = _user()
    loaded_as = []

    class LazyUser:
        def __getattr__(self, name):
            loaded_as.append(_one("SELECT current_user::text"))
            return getattr(a, name)

    seen: list[dict] = []
    rls.RowLevelSecurityMiddleware(_probe(seen))(_request(LazyUser()))
    assert loaded_as
    assert rls.APP_ROLE not in loaded_as
    assert seen[0]["auth.user_id"] == a.pk
