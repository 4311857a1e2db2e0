"""While the database does not answer: the API answers its JSON error with 503 and Retry-After,
pages a plain 503 page, nothing a 500; the outage is logged once, without the driver's text; and
the first request after it comes back succeeds (witchcraft/platform/outage.py).

The database is made unreachable for real (the connection is pointed at a port where nothing
listens, or the server ends the connection under a request): nothing is mocked. The same under
gunicorn with a real PostgreSQL killed and restarted: witchcraft/tests/test_outage_live.py.
"""

import logging

import pytest
from django.db import close_old_connections, connection
from django.test import Client

from witchcraft.platform import outage
from witchcraft.testing import factories
from witchcraft.testing.database import unreachable


@pytest.fixture
def client():
    """As a real server answers: Django's test client would re-raise the exception a request
    met (it listens to the same signal as the middleware) instead of returning the answer."""
    return Client(raise_request_exception=False)


COMMITTED = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def member():
    """A member with a token, committed: the tests close the connection under a request,
    which a test transaction would not survive."""
    return factories.api_member()


def _assert_api_503(response):
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == str(outage.RETRY_AFTER_SECONDS)
    body = response.json()
    assert body == {"error": {"code": "database_unavailable", "message": outage.MESSAGE}}


@COMMITTED
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/usage", None),
        ("get", "/api/v1/quota", None),
        ("post", "/api/v1/usage", {"model": "gpt-5-mini", "input_tokens": 1, "output_tokens": 1}),
        ("get", "/api/v1/agents/sessions", None),
        ("get", "/api/v1/no-such-operation", None),
    ],
)
def test_the_api_answers_a_json_503_with_retry_after(
    client, member, django_db_blocker, method, path, body
):
    """The bearer token is looked up by a middleware, before the API's own error handling:
    that lookup failing is a 503 in the API's shape too."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {member.token}"}
    with unreachable(django_db_blocker):
        if body is None:
            response = getattr(client, method)(path, **headers)
        else:
            response = client.post(path, body, content_type="application/json", **headers)
    _assert_api_503(response)


def test_an_anonymous_api_call_is_a_json_503_too(client, django_db_blocker):
    with unreachable(django_db_blocker):
        response = client.post(
            "/api/v1/auth/login",
            {"email": "a@example.com", "password": "x" * 12},
            content_type="application/json",
        )
    _assert_api_503(response)


@pytest.mark.parametrize("path", ["/me/usage/", "/auth/login/", "/dashboard/", "/admin/"])
def test_pages_answer_a_plain_503_page(client, django_db_blocker, path):
    with unreachable(django_db_blocker):
        response = client.get(path)
    assert response.status_code == 503
    assert response["Retry-After"] == str(outage.RETRY_AFTER_SECONDS)
    assert b"Back in a moment" in response.content
    assert b"Traceback" not in response.content


@COMMITTED
def test_a_signed_in_page_is_a_503_too(client, member, django_db_blocker):
    client.force_login(member)
    with unreachable(django_db_blocker):
        response = client.get("/me/usage/")
    assert response.status_code == 503


def test_the_outage_is_logged_once_without_the_drivers_text(client, django_db_blocker, caplog):
    outage.outage_log.up()  # an earlier test's outage is over
    caplog.clear()
    with caplog.at_level(logging.INFO), unreachable(django_db_blocker):
        for _ in range(5):
            client.get("/api/v1/usage")
            client.get("/me/usage/")
    records = [r for r in caplog.records if r.name in ("witchcraft.outage", "django.request")]
    assert [r.getMessage().split(":")[0] for r in records] == ["database unavailable"]
    assert "refused" not in records[0].getMessage()
    assert "127.0.0.1" not in records[0].getMessage()


@COMMITTED
def test_the_first_request_after_a_lost_connection_succeeds(client, settings):
    """The server ends this thread's persistent connection (as a restart does): the request
    that meets it answers 503, the next one reconnects and succeeds."""
    user = factories.api_member()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {user.token}"}
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    connection.settings_dict["CONN_MAX_AGE"] = 60
    try:
        assert client.get("/api/v1/quota", **headers).status_code == 200
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        # Kill the connection from another one, as a database restart does.
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])
        # What Django's WSGI handler does when a request starts (its test client does not):
        # a persistent connection is health-checked before its first use in the request.
        close_old_connections()
        assert client.get("/api/v1/quota", **headers).status_code == 200
        close_old_connections()
        assert client.get("/api/v1/quota", **headers).status_code == 200
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = 0
        connection.close()


def test_a_query_that_fails_on_a_live_database_is_not_an_outage():
    """Only connection failures are outages: a bug stays a 500 (and is logged as one)."""
    from django.db import DatabaseError, OperationalError

    assert not outage.is_database_unavailable(DatabaseError("syntax error"))
    assert not outage.is_database_unavailable(ValueError("x"))
    assert not outage.is_database_unavailable(OperationalError("no cause"))
