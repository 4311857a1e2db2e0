"""Schemathesis against the API's own OpenAPI schema: every check, with a valid token and
without. No 5xx, no success without a token where one is required, responses as documented."""

import secrets
from datetime import timedelta

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings

from accounts import scopes, tokens
from accounts.models import AccessToken
from witchcraft.api import api
from witchcraft.testing.factories import UserFactory, quota_for

schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1/"))
schema.app = WSGIHandler()
# The same document, called with the test's token. Given through an auth provider, not added to
# each call: Schemathesis then knows that a request it made without the bearerAuth header got
# one, and does not expect the API to refuse it. The provider is asked while the tests are
# collected (explicit examples), before the database exists: the token's value is fixed here
# and the `bearer` fixture stores it.
with_token = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1/"))
with_token.app = WSGIHandler()
RAW_TOKEN = tokens.TOKEN_PREFIX + secrets.token_urlsafe(32)


@with_token.auth(refresh_interval=None)
class _TheTestsToken:
    def get(self, case, context):
        return RAW_TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Requests go straight to the WSGI handler, whose end-of-request signal would close the
    connection holding the test's transaction (Django's test client unhooks it the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def no_rate_limits(settings):
    settings.API_RATE_LIMITS = False
    settings.RATE_LIMITS = {action: (1_000_000, 60) for action in settings.RATE_LIMITS}


@pytest.fixture
def bearer(db, no_rate_limits):
    user = UserFactory(email="fuzz@example.com", email_verified_at=timezone.now())
    quota_for(user, "pro")
    AccessToken.objects.create(  # what tokens.token_issue stores for a sign-in token
        user=user,
        name="schemathesis",
        token_hash=tokens.digest(RAW_TOKEN),
        prefix=RAW_TOKEN[: tokens.PREFIX_LENGTH],
        scopes=scopes.ordered(scopes.default_client_scopes()),
        expires_at=timezone.now() + timedelta(days=30),
    )
    return RAW_TOKEN


@pytest.mark.django_db
@with_token.parametrize()
@FUZZ
def test_with_a_valid_token(case, bearer):
    response = case.call()
    # An operation that needs a scope, called with the token, never answers 401 (negative cases
    # may leave the header out on purpose: those are 401, as they should be; sign-out revokes
    # the token for the calls after it).
    sent = (case.headers or {}).get("Authorization") == f"Bearer {bearer}"
    if sent and "x-required-scope" in case.operation.definition.raw:
        assert response.status_code != 401, response.content
    case.validate_response(response)


@pytest.mark.django_db
@schema.parametrize()
@FUZZ
def test_without_a_token(case, no_rate_limits):
    response = case.call()
    case.validate_response(response)
