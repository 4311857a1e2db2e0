"""Scopes that mean something, through the HTTP API: each operation needs its scope (403
``insufficient_scope`` otherwise), a token mints only narrower and shorter-lived tokens, the
lifetime cap, usage.record and USAGE_SELF_REPORTING, tokens issued before scopes existed, and the
per-account rate limit. The tokens page's scope checkboxes and lifetime are tested at the end."""

import importlib
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import scopes, tokens
from accounts.models import AccessToken, AuditLog
from billing.models import SubscriptionTier
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = [pytest.mark.django_db, pytest.mark.urls("accounts.tests.probe_api")]
PASSWORD = "correct horse battery"  # the factory's
CLIENT_DEFAULT = ["usage.read", "agents", "tokens.manage", "account"]


def _verified(**fields):
    return factories.UserFactory(email_verified_at=timezone.now(), **fields)


def _token(user, scope_list=None, **kwargs) -> str:
    with transaction.atomic(), rls.user_context(user):
        return tokens.token_issue(user_id=user.pk, name="t", scopes=scope_list, **kwargs).raw


def _auth(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _get(client, path, raw):
    return client.get(path, **_auth(raw))


def _post(client, path, body, raw):
    return client.post(path, body, content_type="application/json", **_auth(raw))


def _assert_insufficient(response, scope, granted):
    assert response.status_code == 403, response.content
    assert response.json() == {
        "error": {
            "code": "insufficient_scope",
            "message": f"This token lacks the scope {scope}.",
            "details": {"required": scope, "granted": granted},
        }
    }
    assert response["WWW-Authenticate"] == f'Bearer error="insufficient_scope", scope="{scope}"'


# --- sign-in tokens and the vocabulary --------------------------------------------------------


@pytest.mark.parametrize(
    ("self_reporting", "expected"),
    [(False, CLIENT_DEFAULT), (True, ["usage.read", "usage.record", *CLIENT_DEFAULT[1:]])],
)
def test_sign_in_tokens_get_the_default_client_scopes(client, settings, self_reporting, expected):
    settings.USAGE_SELF_REPORTING = self_reporting
    _verified(email="me@example.com", password=PASSWORD)
    response = client.post(
        "/api/v1/auth/login",
        {"email": "me@example.com", "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["token_info"]["scopes"] == expected
    assert scopes.ordered(scopes.default_client_scopes()) == expected


# --- each operation needs its scope -----------------------------------------------------------


@pytest.mark.parametrize("scope", scopes.ALL)
def test_each_scope_is_required_by_its_operations(client, settings, scope):
    settings.USAGE_SELF_REPORTING = True  # so that a user token may hold every scope
    user = _verified()
    others = [s for s in scopes.ALL if s != scope]
    without = _token(user, others)
    _assert_insufficient(_get(client, f"/api/probe/needs/{scope}", without), scope, others)
    holding = _token(user, [scope])
    response = _get(client, f"/api/probe/needs/{scope}", holding)
    assert response.status_code == 200
    assert response.json()["user_id"] == user.pk


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", "/api/v1/me", scopes.ACCOUNT),
        ("get", "/api/v1/tokens", scopes.TOKENS_MANAGE),
        ("post", "/api/v1/tokens", scopes.TOKENS_MANAGE),
        ("delete", "/api/v1/tokens/1", scopes.TOKENS_MANAGE),
    ],
)
def test_the_accounts_operations_need_their_scope(client, method, path, scope):
    user = _verified()
    granted = [s for s in CLIENT_DEFAULT if s != scope]
    raw = _token(user, granted)
    response = getattr(client, method)(
        path, {"name": "x"}, content_type="application/json", **_auth(raw)
    )
    _assert_insufficient(response, scope, granted)
    assert AccessToken.objects.filter(user=user, revoked_at=None).count() == 1


def test_sign_out_needs_no_scope(client):
    raw = _token(_verified(), [scopes.USAGE_READ])
    assert _post(client, "/api/v1/auth/logout", {}, raw).status_code == 204
    assert _get(client, "/api/probe/needs/usage.read", raw).status_code == 401


def test_without_a_credential_it_is_still_401(client):
    response = client.get("/api/probe/needs/usage.read")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_operation_that_declares_no_scope_refuses_every_token(client, settings):
    settings.USAGE_SELF_REPORTING = True
    raw = _token(_verified(), list(scopes.ALL))
    response = _get(client, "/api/probe/undeclared", raw)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert response.json()["error"]["details"]["required"] is None
    assert response["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert client.get("/api/probe/undeclared").status_code == 401


def test_require_scope_asks_for_a_second_scope_inside_a_view(client, settings):
    settings.USAGE_SELF_REPORTING = True
    user = _verified()
    agents_only = _token(user, [scopes.AGENTS])
    response = _post(client, "/api/probe/agents-with-usage", {}, agents_only)
    _assert_insufficient(response, scopes.USAGE_RECORD, [scopes.AGENTS])
    both = _token(user, [scopes.AGENTS, scopes.USAGE_RECORD])
    assert _post(client, "/api/probe/agents-with-usage", {}, both).status_code == 200


# --- usage.record and USAGE_SELF_REPORTING -----------------------------------------------------


def test_a_user_token_cannot_get_usage_record_by_default(client):
    user = _verified()
    raw = _token(user)
    before = AccessToken.objects.count()
    response = _post(client, "/api/v1/tokens", {"name": "rec", "scopes": ["usage.record"]}, raw)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == tokens.SCOPE_RECORD_REFUSED
    assert response.json()["error"]["details"]["field"] == "scopes"
    assert AccessToken.objects.count() == before
    with pytest.raises(tokens.TokenError) as refused:
        _token(user, [scopes.USAGE_RECORD])
    assert refused.value.message == tokens.SCOPE_RECORD_REFUSED


def test_a_recording_token_stops_recording_when_self_reporting_is_turned_off(client, settings):
    settings.USAGE_SELF_REPORTING = True
    raw = _token(_verified(), [scopes.USAGE_RECORD, scopes.USAGE_READ])
    response = _get(client, "/api/probe/needs/usage.record", raw)
    assert response.status_code == 200 and response.json()["may_record"] is True
    settings.USAGE_SELF_REPORTING = False
    _assert_insufficient(
        _get(client, "/api/probe/needs/usage.record", raw), "usage.record", ["usage.read"]
    )
    response = _get(client, "/api/probe/needs/usage.read", raw)
    assert response.status_code == 200 and response.json()["may_record"] is False


# --- a token mints only narrower, shorter-lived tokens ----------------------------------------


def test_a_token_without_tokens_manage_cannot_mint(client):
    user = _verified()
    raw = _token(user, [scopes.USAGE_READ])
    response = _post(client, "/api/v1/tokens", {"name": "more", "ttl_days": 30}, raw)
    _assert_insufficient(response, scopes.TOKENS_MANAGE, [scopes.USAGE_READ])
    assert AccessToken.objects.filter(user=user).count() == 1


def test_a_token_cannot_mint_broader_scopes(client):
    user = _verified()
    raw = _token(user, [scopes.USAGE_READ, scopes.TOKENS_MANAGE])
    body = {"name": "wider", "scopes": ["usage.read", "agents", "account"]}
    response = _post(client, "/api/v1/tokens", body, raw)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope"
    assert error["message"] == tokens.SCOPES_NOT_HELD.format(scopes="agents, account")
    assert error["details"]["not_held"] == ["agents", "account"]
    assert error["details"]["field"] == "scopes"
    assert AccessToken.objects.filter(user=user).count() == 1


def test_a_token_mints_a_subset_or_by_default_its_own_scopes(client):
    user = _verified()
    raw = _token(user, [scopes.USAGE_READ, scopes.AGENTS, scopes.TOKENS_MANAGE])
    narrower = _post(client, "/api/v1/tokens", {"name": "ci", "scopes": ["agents"]}, raw)
    assert narrower.status_code == 201
    assert narrower.json()["token_info"]["scopes"] == ["agents"]
    same = _post(client, "/api/v1/tokens", {"name": "copy"}, raw)
    assert same.status_code == 201
    assert same.json()["token_info"]["scopes"] == ["usage.read", "agents", "tokens.manage"]
    row = AuditLog.objects.filter(event_type="token_created").order_by("-id").first()
    assert (
        row.details["created_with_token"]
        == AccessToken.objects.get(token_hash=tokens.digest(raw)).pk
    )


def test_a_token_cannot_outlive_its_parent(client):
    user = _verified()
    raw = _token(user, ttl_days=3)
    parent = AccessToken.objects.get(token_hash=tokens.digest(raw))
    longer = _post(client, "/api/v1/tokens", {"name": "longer", "ttl_days": 4}, raw)
    assert longer.status_code == 403
    assert longer.json()["error"]["details"]["field"] == "ttl_days"
    assert "cannot outlive" in longer.json()["error"]["message"]
    assert AccessToken.objects.filter(user=user).count() == 1
    # The default lifetime (30 days) is cut to the parent's expiry.
    default = _post(client, "/api/v1/tokens", {"name": "default"}, raw)
    assert default.status_code == 201
    child = AccessToken.objects.get(pk=default.json()["token_info"]["id"])
    assert child.expires_at == parent.expires_at
    shorter = _post(client, "/api/v1/tokens", {"name": "shorter", "ttl_days": 2}, raw)
    assert shorter.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "ttl_days": 31}, "ttl_days"),
        ({"name": "x", "ttl_days": 366}, "ttl_days"),
        ({"name": "x", "ttl_days": 10**30}, "ttl_days"),
        ({"name": "x", "scopes": ["admin"]}, "scopes"),
        ({"name": "x", "scopes": ["usage.read\x00"]}, "scopes.0"),
        ({"name": "x", "scopes": "account"}, "scopes"),
        ({"name": "x", "scopes": ["account"] * 6}, "scopes"),
    ],
)
def test_out_of_range_lifetimes_and_unknown_scopes_are_422(client, body, field):
    user = _verified()
    response = _post(client, "/api/v1/tokens", body, _token(user))
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert field in (
        error["details"]["field"]
        if isinstance(error["details"], dict)
        else [d["field"] for d in error["details"]]
    )
    assert AccessToken.objects.filter(user=user).count() == 1


def test_an_unknown_scope_is_named(client):
    response = _post(
        client, "/api/v1/tokens", {"name": "x", "scopes": ["admin"]}, _token(_verified())
    )
    assert "'admin'" in response.json()["error"]["message"]
    assert response.json()["error"]["message"].startswith("Unknown scope")


def _settings_with(**env) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        " print(s.ACCESS_TOKEN_MAX_TTL_DAYS, s.ACCESS_TOKEN_TTL_DAYS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "witchcraft.settings", "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ACCESS_TOKEN_MAX_TTL_DAYS": "31"}, "ACCESS_TOKEN_MAX_TTL_DAYS must be between 1 and 30"),
        ({"ACCESS_TOKEN_MAX_TTL_DAYS": "0"}, "ACCESS_TOKEN_MAX_TTL_DAYS must be between 1 and 30"),
        (
            {"ACCESS_TOKEN_MAX_TTL_DAYS": "7", "ACCESS_TOKEN_TTL_DAYS": "8"},
            "ACCESS_TOKEN_TTL_DAYS must be between 1 and ACCESS_TOKEN_MAX_TTL_DAYS (7)",
        ),
        ({"SERVICE_CREDENTIAL_MAX_TTL_DAYS": "400"}, "SERVICE_CREDENTIAL_MAX_TTL_DAYS must be"),
    ],
)
def test_a_lifetime_setting_out_of_range_refuses_to_start(env, message):
    done = _settings_with(**env)
    assert done.returncode != 0
    assert message in done.stderr


def test_a_lowered_cap_lowers_the_default_lifetime_too():
    done = _settings_with(ACCESS_TOKEN_MAX_TTL_DAYS="7")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["7", "7"]


def test_a_lowered_cap_applies_to_new_tokens(client, settings):
    settings.ACCESS_TOKEN_MAX_TTL_DAYS = 7
    user = _verified()
    raw = _token(user)  # the default lifetime, 30 days, is cut to the cap
    parent = AccessToken.objects.get(token_hash=tokens.digest(raw))
    assert parent.expires_at - parent.created_at == timedelta(days=7)
    response = _post(client, "/api/v1/tokens", {"name": "x", "ttl_days": 8}, raw)
    assert response.status_code == 422
    assert response.json()["error"]["message"] == tokens.TTL_INVALID.format(max_days=7)
    assert _post(client, "/api/v1/tokens", {"name": "x", "ttl_days": 6}, raw).status_code == 201


# --- tokens issued before scopes meant anything -----------------------------------------------


def test_a_token_from_before_the_scopes_is_treated_per_the_migration(client, settings):
    user = _verified()
    legacy_raw = "wc_" + "legacy" * 7 + "x"
    AccessToken.objects.create(
        user=user,
        name="old",
        token_hash=tokens.digest(legacy_raw),
        prefix=legacy_raw[:10],
        scopes=["usage:write"],  # an arbitrary scope, as issuing allowed then
        expires_at=timezone.now() + timedelta(days=300),  # and a lifetime past today's cap
    )
    assert _get(client, "/api/v1/me", legacy_raw).status_code == 403  # meaningless until migrated
    migration = importlib.import_module("accounts.migrations.0014_access_token_scopes")
    migration.grant_the_default_scopes(apps, None)
    assert AccessToken.objects.get(name="old").scopes == list(scopes.ALL)
    assert _get(client, "/api/v1/me", legacy_raw).status_code == 200
    assert _get(client, "/api/v1/tokens", legacy_raw).status_code == 200
    assert _get(client, "/api/probe/needs/agents", legacy_raw).status_code == 200
    # usage.record only where user tokens may record, as for the client app's default set.
    assert _get(client, "/api/probe/needs/usage.record", legacy_raw).status_code == 403
    settings.USAGE_SELF_REPORTING = True
    assert _get(client, "/api/probe/needs/usage.record", legacy_raw).status_code == 200


# --- the plan's rate limit counts the account, whatever credential it uses -------------------


def test_the_rate_limit_is_per_account_across_tokens_and_service_requests(client, settings):
    settings.API_RATE_LIMITS = True
    SubscriptionTier.objects.filter(slug="free").update(requests_per_minute=4)
    member = factories.api_member(tier="free")
    second = _token(member)
    service = factories.service_credential()
    on_behalf = {**_auth(service.raw), "HTTP_WITCHCRAFT_USER": str(member.pk)}
    statuses = [
        _get(client, "/api/probe/needs/usage.read", member.token).status_code,
        _get(client, "/api/probe/needs/usage.read", second).status_code,
        client.get("/api/probe/needs/usage.read", **on_behalf).status_code,
        _get(client, "/api/probe/needs/agents", second).status_code,
        _get(client, "/api/probe/needs/usage.read", member.token).status_code,
        client.get("/api/probe/needs/agents", **on_behalf).status_code,
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]
    limited = _get(client, "/api/probe/needs/usage.read", second)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    other = factories.api_member(tier="free")  # another account has its own counter
    assert _get(client, "/api/probe/needs/usage.read", other.token).status_code == 200


# --- the tokens page ------------------------------------------------------------------------


def _signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_the_page_offers_the_scopes_with_the_default_checked(settings):
    browser = _signed_in(_verified())
    form = browser.get("/me/tokens/").context["token_form"]
    assert [value for value, _ in form.fields["scopes"].choices] == CLIENT_DEFAULT
    assert form["scopes"].initial == CLIENT_DEFAULT
    assert form["ttl_days"].initial == 30 and form.fields["ttl_days"].max_value == 30
    settings.USAGE_SELF_REPORTING = True
    form = browser.get("/me/tokens/").context["token_form"]
    assert scopes.USAGE_RECORD in [value for value, _ in form.fields["scopes"].choices]


def test_the_page_creates_a_token_with_the_chosen_scopes_and_lifetime():
    user = _verified()
    response = _signed_in(user).post(
        reverse("accounts:token_create"), {"name": "ci", "scopes": ["agents"], "ttl_days": 5}
    )
    assert response.status_code == 200 and "it will not be shown again" in response.text
    token = AccessToken.objects.get(user=user)
    assert token.scopes == ["agents"]
    assert token.expires_at - token.created_at == timedelta(days=5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scopes": ["agents"], "ttl_days": 31}, "less than or equal to 30"),
        ({"scopes": [], "ttl_days": 5}, "Choose at least one scope."),
        ({"scopes": ["usage.record"], "ttl_days": 5}, "not one of the available choices"),
        ({"scopes": ["agents"], "ttl_days": 8, "cap": 7}, "less than or equal to 7"),
    ],
)
def test_the_page_refuses_what_the_api_refuses(settings, fields, message):
    settings.ACCESS_TOKEN_MAX_TTL_DAYS = fields.pop("cap", 30)
    user = _verified()
    response = _signed_in(user).post(reverse("accounts:token_create"), {"name": "x", **fields})
    assert response.status_code == 200
    assert message in response.text
    assert not AccessToken.objects.filter(user=user).exists()
