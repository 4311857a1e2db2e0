"""A failed request's error message is kept on its usage row (the seed's ``error_message``):
written by record_ai_usage and record_ai_usage_batch, only for a request that did not
succeed, at most 1,000 characters, credentials it echoes redacted, part of what a retry must
repeat to be a duplicate."""

import pytest
from django.db import connection, transaction
from django.test import Client

from usage import services
from usage.models import AIUsageRequest
from witchcraft.platform import rls
from witchcraft.testing.factories import api_member, catalog_model

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("self_reporting")]

LEAKY = (
    "Incorrect API key provided: sk-proj-abcDEF123456. Header Authorization: Bearer eyJhbGc.x;"
    ' token=wc_abcdefghijkl, api_key="s3cr3t", password: hunter2 (rate limit 429)'
)
REDACTED = (
    "Incorrect API key provided: [redacted]. Header Authorization: Bearer [redacted];"
    ' token=[redacted], api_key="[redacted]", password: [redacted] (rate limit 429)'
)


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.API_RATE_LIMITS = False


@pytest.fixture
def member():
    return api_member(tier="pro")


def record(member, **fields):
    model = catalog_model("gpt-5-mini")
    with transaction.atomic(), rls.user_context(member, may_record=True):
        return services.usage_record(
            user_id=member.pk,
            provider_id=model.provider_id,
            model_id=model.id,
            input_tokens=10,
            output_tokens=0,
            **fields,
        )


def send(member, *records):
    return Client().post(
        "/api/v1/usage/batch",
        {"records": list(records)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {member.token}",
    )


def body(request_id="r-1", **fields):
    return {
        "request_id": request_id,
        "provider": "openai",
        "model": "gpt-5-mini",
        "input_tokens": 10,
        "output_tokens": 0,
        "status": "error",
        "error_code": "rate_limit_exceeded",
        **fields,
    }


def test_a_failed_request_keeps_its_message_with_credentials_redacted(member):
    usage_id = record(member, status="error", error_code="invalid_api_key", error_message=LEAKY)
    row = AIUsageRequest.objects.get(pk=usage_id)
    assert (row.status, row.error_code, row.error_message) == ("error", "invalid_api_key", REDACTED)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": "success", "error_message": "boom"}, "only for a request that did not succeed"),
        ({"status": "timeout", "error_message": "x" * 1001}, "longer than 1000 characters"),
    ],
)
def test_a_message_on_a_success_or_too_long_is_refused_and_nothing_is_written(
    member, fields, message
):
    with pytest.raises(services.UsageError, match=message) as refused:
        record(member, **fields)
    assert refused.value.code == "invalid"
    assert not AIUsageRequest.objects.filter(user=member).exists()


def test_the_api_stores_the_message_and_says_why_it_refuses_one(member):
    answer = send(
        member,
        body("r-1", error_message=LEAKY),
        body("r-2", status="success", error_message="not an error"),
        body("r-4", error_message=None, status="cancelled"),
    )
    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["recorded", "refused", "recorded"]
    assert results[1]["error"]["field"] == "error_message"
    assert "did not succeed" in results[1]["error"]["message"]
    stored = dict(
        AIUsageRequest.objects.filter(user=member).values_list("request_id", "error_message")
    )
    assert stored == {"r-1": REDACTED, "r-4": ""}


@pytest.mark.parametrize("message", ["bad\x00byte", "y" * 1001])
def test_the_api_refuses_a_message_with_a_nul_character_or_too_long(member, message):
    answer = send(member, body(error_message=message))
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "records.0.error_message"
    assert not AIUsageRequest.objects.filter(user=member).exists()


def test_a_retry_is_a_duplicate_only_with_the_same_message(member):
    assert send(member, body(error_message="upstream 503")).json()["results"][0]["status"] == (
        "recorded"
    )
    again = send(member, body(error_message="upstream 503")).json()["results"][0]
    assert again["status"] == "duplicate"
    other = send(member, body(error_message="upstream 502")).json()["results"][0]
    assert other["status"] == "refused"
    assert other["error"]["code"] == "conflict"
    assert AIUsageRequest.objects.filter(user=member).count() == 1


def test_redaction_leaves_an_ordinary_message_alone():
    with connection.cursor() as cursor:
        plain = "The model is overloaded (529); retry in 30 seconds. Request req_8dfa9."
        cursor.execute("SELECT public.ai_usage_redact(%s)", [plain])
        assert cursor.fetchone()[0] == plain
