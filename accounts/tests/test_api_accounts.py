"""The accounts part of the JSON API: register, login (token), logout, me, tokens."""

import pytest
from django.core import mail
from django.utils import timezone

from accounts import audit
from accounts.models import AccessToken, AuditLog, User
from witchcraft.testing.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def _post(client, path, body, token=None):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(f"/api/v1{path}", body, content_type="application/json", **extra)


def _get(client, path, token=None):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get(f"/api/v1{path}", **extra)


def _verified(email="api@example.com"):
    return UserFactory(email=email, password=PASSWORD, email_verified_at=timezone.now())


def _login(client, email="api@example.com", **extra):
    return _post(client, "/auth/login", {"email": email, "password": PASSWORD, **extra})


def test_register_answers_the_same_for_a_new_and_a_taken_address(client):
    first = _post(client, "/auth/register", {"email": "new@example.com", "password": PASSWORD})
    second = _post(client, "/auth/register", {"email": "NEW@example.com", "password": PASSWORD})
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert User.objects.filter(email="new@example.com").count() == 1
    # The new address gets its confirmation link, the taken one the notice that someone tried
    # (the one flow of accounts.registration, as from the sign-up page).
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["new@example.com"], "[Witchcraft] Confirm your email address"),
        (["NEW@example.com"], "[Witchcraft] Someone tried to create an account with your address"),
    ]


def test_register_refuses_a_weak_password_naming_the_field(client):
    response = _post(client, "/auth/register", {"email": "weak@example.com", "password": "123"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "password"
    assert not User.objects.filter(email="weak@example.com").exists()


def test_login_returns_a_token_once_and_me_answers_with_it(client):
    user = _verified()
    response = _login(client)
    assert response.status_code == 201
    body = response.json()
    raw = body["token"]
    assert raw.startswith("wc_") and body["token_info"]["prefix"] == raw[:10]
    me = _get(client, "/me", raw)
    assert me.status_code == 200
    assert me.json()["email"] == user.email and me.json()["email_verified"] is True
    assert not AccessToken.objects.filter(token_hash=raw).exists()  # only the hash is kept


def test_login_refuses_wrong_passwords_like_unknown_addresses(client):
    _verified()
    wrong = _post(client, "/auth/login", {"email": "api@example.com", "password": "nope nope"})
    unknown = _post(client, "/auth/login", {"email": "who@example.com", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


def test_an_unverified_account_gets_403_for_a_token(client):
    UserFactory(email="unverified@example.com", password=PASSWORD)
    response = _login(client, email="unverified@example.com")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer wc_not-a-real-token", "Basic abc"])
def test_missing_or_bad_tokens_get_401(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/api/v1/me", **extra)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_browser_session_does_not_authenticate_the_api(client):
    user = _verified()
    client.force_login(user)
    assert _get(client, "/me").status_code == 401


def test_logout_revokes_the_token(client):
    _verified()
    raw = _login(client).json()["token"]
    assert _post(client, "/auth/logout", {}, raw).status_code == 204
    assert _get(client, "/me", raw).status_code == 401
    assert AuditLog.objects.filter(event_type=audit.TOKEN_REVOKED).exists()


def test_tokens_list_create_and_delete_only_your_own(client):
    _verified()
    raw = _login(client).json()["token"]
    created = _post(client, "/tokens", {"name": "ci", "ttl_days": 7}, raw)
    assert created.status_code == 201
    second = created.json()["token"]
    listed = _get(client, "/tokens", raw).json()
    assert {t["name"] for t in listed} == {"Witchcraft app", "ci"}
    assert all("token" not in t for t in listed)  # the raw value is never listed

    other = _verified("other@example.com")
    other_raw = _login(client, email=other.email).json()["token"]
    mine = created.json()["token_info"]["id"]
    response = client.delete(f"/api/v1/tokens/{mine}", HTTP_AUTHORIZATION=f"Bearer {other_raw}")
    assert response.status_code == 404  # existence does not leak
    assert _get(client, "/me", second).status_code == 200

    response = client.delete(f"/api/v1/tokens/{mine}", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 204
    assert _get(client, "/me", second).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "ttl_days": 0}, "ttl_days"),
        ({"name": "ok", "ttl_days": "soon"}, "ttl_days"),
        ({}, "name"),
    ],
)
def test_bad_token_requests_name_the_field_and_write_nothing(client, body, field):
    _verified()
    raw = _login(client).json()["token"]
    before = AccessToken.objects.count()
    response = _post(client, "/tokens", body, raw)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == field
    assert AccessToken.objects.count() == before


def test_invalid_json_is_a_4xx_not_a_500(client):
    _verified()
    raw = _login(client).json()["token"]
    response = client.post(
        "/api/v1/tokens",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_a_body_over_the_limit_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    _verified()
    raw = _login(client).json()["token"]
    response = _post(client, "/tokens", {"name": "x" * 5000}, raw)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_the_plan_rate_limit_answers_429_with_retry_after(client):
    from billing.models import SubscriptionTier

    user = _verified()
    SubscriptionTier.objects.filter(slug="free").update(requests_per_minute=3)
    from witchcraft.testing.factories import quota_for

    quota_for(user)
    raw = _login(client).json()["token"]
    statuses = [_get(client, "/me", raw).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = _get(client, "/me", raw)
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_openapi_and_docs_are_served(client):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/auth/login" in schema.json()["paths"]
    assert client.get("/api/v1/docs").status_code == 200
