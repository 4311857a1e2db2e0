"""Schemathesis against the API's own OpenAPI schema: every check, with a valid token and
without. No 5xx, no success without a token where one is required, responses as documented."""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings

from accounts import tokens
from witchcraft import rls
from witchcraft.api import api
from witchcraft.testing.factories import UserFactory, quota_for

schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1/"))
schema.app = WSGIHandler()

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
    with transaction.atomic(), rls.user_context(user):
        issued = tokens.token_issue(user_id=user.pk, name="schemathesis")
    return issued.raw


@pytest.mark.django_db
@schema.parametrize()
@FUZZ
def test_with_a_valid_token(case, bearer):
    response = case.call(headers={"Authorization": f"Bearer {bearer}"})
    case.validate_response(response, headers={"Authorization": f"Bearer {bearer}"})


@pytest.mark.django_db
@schema.parametrize()
@FUZZ
def test_without_a_token(case, no_rate_limits):
    response = case.call()
    case.validate_response(response)
