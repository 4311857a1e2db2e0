"""Which API token sent each request: every API path that records usage stores the caller's
bearer token on the row (ai_usage_requests.access_token_id); a client cannot name another one,
and the SQL functions refuse a token that is not the user's."""

import json

import pytest
from django.db import connection, transaction

from accounts import tokens
from accounts.models import AccessToken
from usage import services
from usage.models import AIUsageRequest
from witchcraft.platform import rls
from witchcraft.testing.factories import AgentSessionFactory, api_member, catalog_model

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("self_reporting")]


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.API_RATE_LIMITS = False


def _post(client, user, path, body, raw=None):
    return client.post(
        f"/api/v1{path}",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw or user.token}",
    )


def _record(request_id="req-1", **fields):
    return {
        "request_id": request_id,
        "provider": "openai",
        "model": "gpt-5-mini",
        "input_tokens": 1_000,
        "output_tokens": 500,
        **fields,
    }


def _the_token(user) -> AccessToken:
    (token,) = AccessToken.objects.filter(user=user)
    return token


def test_a_single_record_names_the_token_that_sent_it(client):
    alice = api_member()
    response = _post(client, alice, "/usage", _record())
    assert response.status_code == 201, response.content
    row = AIUsageRequest.objects.get(user=alice)
    assert row.access_token_id == _the_token(alice).pk


def test_each_row_of_a_batch_names_the_token_that_sent_it(client):
    alice = api_member()
    with transaction.atomic(), rls.user_context(alice):
        second = tokens.token_issue(user_id=alice.pk, name="ci", scopes=["usage.record"])
    body = {"records": [_record("a"), _record("b")]}
    response = _post(client, alice, "/usage/batch", body, raw=second.raw)
    assert response.status_code == 200, response.content
    assert response.json()["recorded"] == 2
    ids = set(AIUsageRequest.objects.filter(user=alice).values_list("access_token_id", flat=True))
    assert ids == {second.token.pk}


def test_a_reservation_settled_by_a_record_names_the_token(client):
    alice = api_member()
    reserved = _post(client, alice, "/quota/consume", {"tokens": 20_000})
    assert reserved.status_code == 200, reserved.content
    reservation = reserved.json()["reservation"]["id"]
    response = _post(client, alice, "/usage", _record(reservation_id=reservation))
    assert response.status_code == 201, response.content
    row = AIUsageRequest.objects.get(user=alice)
    assert row.reservation_id == reservation
    assert row.access_token_id == _the_token(alice).pk


def test_an_assistant_message_with_usage_names_the_token(client):
    alice = api_member()
    session = AgentSessionFactory(user=alice)
    body = {"role": "assistant", "content": "answer", "usage": _record()}
    response = _post(client, alice, f"/agents/sessions/{session.pk}/messages", body)
    assert response.status_code == 201, response.content
    assert AIUsageRequest.objects.get(user=alice).access_token_id == _the_token(alice).pk


@pytest.mark.parametrize("path", ["/usage", "/usage/batch"])
def test_a_client_cannot_name_the_token(client, path):
    alice, bob = api_member(), api_member()
    forged = {"access_token_id": _the_token(bob).pk}
    body = _record(**forged) if path == "/usage" else {"records": [_record(**forged)]}
    response = _post(client, alice, path, body)
    assert response.status_code == 422
    assert not AIUsageRequest.objects.filter(user=alice).exists()


def test_record_functions_refuse_another_users_token():
    alice, bob = api_member(), api_member()
    model = catalog_model("gpt-5-mini")
    bobs = _the_token(bob).pk
    with (
        pytest.raises(services.UsageError) as refused,
        transaction.atomic(),
        rls.user_context(alice, may_record=True),
    ):
        services.usage_record(
            user_id=alice.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=1,
            output_tokens=1,
            access_token_id=bobs,
        )
    assert refused.value.code == services.FORBIDDEN
    with (
        pytest.raises(services.UsageError) as refused,
        transaction.atomic(),
        rls.user_context(alice, may_record=True),
    ):
        services.usage_record_batch(user_id=alice.pk, records=[_record()], access_token_id=bobs)
    assert refused.value.code == services.FORBIDDEN
    # A made-up id is refused the same way; nothing was written.
    with (
        pytest.raises(services.UsageError),
        transaction.atomic(),
        rls.user_context(alice, may_record=True),
    ):
        services.usage_record_batch(user_id=alice.pk, records=[_record()], access_token_id=10**12)
    assert not AIUsageRequest.objects.filter(user=alice).exists()


def test_a_record_key_naming_a_token_is_ignored_by_the_batch_function():
    """The batch function reads the records' JSON: a key of the client's never reaches the
    row (the API refuses it before, this is the function's own guard)."""
    alice, bob = api_member(), api_member()
    record = _record(access_token_id=_the_token(bob).pk)
    with (
        transaction.atomic(),
        rls.user_context(alice, may_record=True),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT out_status FROM record_ai_usage_batch(%s, %s::jsonb)",
            [alice.pk, json.dumps([record])],
        )
        assert cursor.fetchall() == [("recorded",)]
    assert AIUsageRequest.objects.get(user=alice).access_token_id is None


def test_a_service_credential_records_without_a_token(client):
    """What a service credential sends names no token: the row's access_token_id is NULL."""
    from witchcraft.testing.factories import service_credential

    alice = api_member()
    credential = service_credential()
    response = client.post(
        "/api/v1/usage",
        _record(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {credential.raw}",
        HTTP_WITCHCRAFT_USER=str(alice.pk),
    )
    assert response.status_code == 201, response.content
    assert AIUsageRequest.objects.get(user=alice).access_token_id is None
