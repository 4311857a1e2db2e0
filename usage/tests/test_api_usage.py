"""The usage part of the JSON API: POST /usage, the roll-up reads and the model catalog."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db.models import Sum

from accounts import tokens
from accounts.models import AccessToken
from agents.models import AgentSession
from billing.models import UserQuota
from usage.models import AIModel, AIProvider, AIUsageDaily, AIUsageMonthly, AIUsageRequest
from usage.schemas import COST_REFUSED, RESERVED_REFUSED
from witchcraft.platform import rls
from witchcraft.testing.factories import (
    AgentMessageFactory,
    AgentSessionFactory,
    api_member,
    catalog_model,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("self_reporting")]


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    """The free plan allows 10 requests a minute; the 429 test turns the limit back on."""
    settings.API_RATE_LIMITS = False


def member(email: str | None = None):
    """A verified user with a free quota (100,000 tokens, $1.00) and a bearer token."""
    return api_member(email=email)


@pytest.fixture
def alice():
    return member()


@pytest.fixture
def bob():
    return member()


def post(client, path, body, token):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(f"/api/v1{path}", body, content_type="application/json", **extra)


def get(client, path, token, **params):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get(f"/api/v1{path}", params, **extra)


def record(**fields) -> dict:
    body = {
        "request_id": "req-1",
        "provider": "openai",
        "model": "gpt-5-mini",
        "input_tokens": 1_000,
        "output_tokens": 500,
    }
    body.update(fields)
    return body


def written(user) -> dict:
    quota = UserQuota.objects.get(user=user)
    return {
        "rows": AIUsageRequest.objects.filter(user=user).count(),
        "daily": AIUsageDaily.objects.filter(user=user).aggregate(Sum("request_count")),
        "monthly": AIUsageMonthly.objects.filter(user=user).aggregate(Sum("request_count")),
        "quota": (quota.tokens_used, quota.cost_used),
    }


# POST /usage -------------------------------------------------------------------------------------


def test_a_record_is_written_with_its_rollups_and_quota(client, alice):
    response = post(
        client,
        "/usage",
        record(
            cached_input_tokens=200,
            reasoning_tokens=100,
            latency_ms=900,
            time_to_first_token_ms=120,
            metadata={"feature": "chat", "tags": ["a", "b"]},
        ),
        alice.token,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    # (800 * 0.25 + 200 * 0.025 + 500 * 2.00) / 1e6
    assert body["cost"] == "0.001205"
    assert (body["request_id"], body["total_tokens"], body["duplicate"]) == ("req-1", 1_500, False)
    row = AIUsageRequest.objects.get(pk=body["id"])
    assert (row.user_id, row.request_id, row.metadata) == (
        alice.id,
        "req-1",
        {"feature": "chat", "tags": ["a", "b"]},
    )
    assert (row.latency_ms, row.time_to_first_token_ms, row.status) == (900, 120, "success")
    assert AIUsageDaily.objects.get(user=alice).total_tokens == 1_500
    assert AIUsageMonthly.objects.get(user=alice).cost == Decimal("0.001205")
    assert UserQuota.objects.get(user=alice).tokens_used == 1_500


@pytest.mark.parametrize("cost", ["0", "0.000006", 0, None])
def test_a_cost_sent_by_the_client_is_refused(client, alice, cost):
    """5M input + 5M output tokens of gpt-5 cost $56.25 at the catalog's prices, whatever the
    client says: a cost in the body is a 422 naming it, and nothing is written."""
    body = record(model="gpt-5", input_tokens=5_000_000, output_tokens=5_000_000, cost=cost)
    response = post(client, "/usage", body, alice.token)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["details"] == [{"field": "cost", "message": COST_REFUSED}]
    assert written(alice)["rows"] == 0
    del body["cost"]
    response = post(client, "/usage", body, alice.token)
    assert response.status_code == 201, response.content
    # (5M * $1.25 + 5M * $10.00) / 1M, the catalog's gpt-5 prices.
    assert response.json()["cost"] == "56.250000"
    row = AIUsageRequest.objects.get(pk=response.json()["id"])
    assert (row.input_price_per_million, row.output_price_per_million) == (
        Decimal("1.25"),
        Decimal("10"),
    )
    assert UserQuota.objects.get(user=alice).cost_used == Decimal("56.25")


@pytest.mark.parametrize("field", ["reserved_tokens", "reserved_cost"])
def test_the_old_reservation_fields_are_refused_naming_them(client, alice, field):
    response = post(client, "/usage", record(**{field: 10_000_000}), alice.token)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"] == [{"field": field, "message": RESERVED_REFUSED}]
    assert written(alice)["rows"] == 0


def test_a_model_can_be_named_by_id(client, alice):
    model = catalog_model("claude-haiku-4-5")
    response = post(
        client,
        "/usage",
        {
            "request_id": "by-id",
            "provider_id": model.provider_id,
            "model_id": model.id,
            "input_tokens": 10,
            "output_tokens": 5,
        },
        alice.token,
    )
    assert response.status_code == 201, response.content
    row = AIUsageRequest.objects.get(pk=response.json()["id"])
    expected = (10 * model.input_price_per_million + 5 * model.output_price_per_million) / 10**6
    assert (row.model_id, row.provider_id, row.cost) == (
        model.id,
        model.provider_id,
        expected.quantize(Decimal("0.000001")),
    )


def test_the_reservation_is_released_when_the_actual_amount_is_booked(client, alice):
    consumed = post(client, "/quota/consume", {"tokens": 4_000, "cost": "0.01"}, alice.token)
    assert consumed.status_code == 200
    reservation = consumed.json()["reservation"]
    response = post(client, "/usage", record(reservation_id=reservation["id"]), alice.token)
    assert response.status_code == 201
    quota = UserQuota.objects.get(user=alice)
    assert (quota.tokens_used, quota.cost_used) == (1_500, Decimal("0.001250"))


def test_a_retry_returns_the_first_id_and_changes_nothing(client, alice):
    first = post(client, "/usage", record(latency_ms=100), alice.token)
    before = written(alice)
    again = post(client, "/usage", record(latency_ms=100), alice.token)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "duplicate": True}
    assert written(alice) == before


@pytest.mark.parametrize(
    "change",
    [
        {"output_tokens": 501},
        {"model": "gpt-5"},
        {"status": "error"},
        {"latency_ms": 5},
        {"metadata": {"other": 1}},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_same_request_id_with_other_content_is_a_conflict(client, alice, change):
    post(client, "/usage", record(), alice.token)
    before = written(alice)
    response = post(client, "/usage", record(**change), alice.token)
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert "req-1" in error["message"]
    assert error["details"] == {"field": "request_id", "request_id": "req-1"}
    assert written(alice) == before


def test_request_ids_are_per_user(client, alice, bob):
    mine = post(client, "/usage", record(), alice.token)
    theirs = post(client, "/usage", record(output_tokens=7), bob.token)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


def test_a_record_links_your_agent_session_and_message(client, alice):
    session = AgentSessionFactory(user=alice)
    message = AgentMessageFactory(session=session, role="assistant")
    response = post(
        client,
        "/usage",
        record(agent_session_id=session.id, agent_message_id=message.id),
        alice.token,
    )
    assert response.status_code == 201, response.content
    row = AIUsageRequest.objects.get(pk=response.json()["id"])
    assert (row.agent_session_id, row.agent_message_id) == (session.id, message.id)
    session.refresh_from_db()
    assert session.total_tokens == 1_500


@pytest.mark.parametrize("field", ["agent_session_id", "agent_message_id"])
def test_another_users_agent_session_or_message_is_not_found(client, alice, bob, field):
    session = AgentSessionFactory(user=bob)
    message = AgentMessageFactory(session=session)
    target = session.id if field == "agent_session_id" else message.id
    response = post(client, "/usage", record(**{field: target}), alice.token)
    missing = post(client, "/usage", record(**{field: 10**12}), alice.token)
    assert response.status_code == missing.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["details"] == {"field": field}
    # Existence does not leak: the same words for someone else's and for nothing.
    assert response.json()["error"]["message"].replace(str(target), "N") == missing.json()["error"][
        "message"
    ].replace(str(10**12), "N")
    assert AIUsageRequest.objects.count() == 0
    assert AgentSession.objects.get(pk=session.pk).total_tokens == 0


def test_a_second_usage_record_for_one_agent_message_is_a_conflict(client, alice):
    message = AgentMessageFactory(session=AgentSessionFactory(user=alice), role="assistant")
    post(client, "/usage", record(agent_message_id=message.id), alice.token)
    response = post(
        client, "/usage", record(request_id="req-2", agent_message_id=message.id), alice.token
    )
    assert response.status_code == 409
    assert response.json()["error"]["details"]["field"] == "agent_message_id"
    assert AIUsageRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        # Unknown, inactive, mismatched or missing catalog entries.
        ({"model": "gpt-9000"}, "model"),
        ({"model": None, "model_id": 999_999}, "model_id"),
        ({"provider": "nobody"}, "provider"),
        ({"provider": "anthropic"}, "provider"),  # gpt-5-mini is OpenAI's
        ({"provider": None, "model": None}, "model"),
        ({"model": "inactive-model"}, "model"),
        # Negative, absurd or inconsistent numbers.
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": 10_000_001}, "output_tokens"),
        ({"cached_input_tokens": 1_001}, "cached_input_tokens"),
        ({"reasoning_tokens": 501}, "reasoning_tokens"),
        ({"cost": "0.01"}, "cost"),
        ({"latency_ms": 3_600_001}, "latency_ms"),
        ({"time_to_first_token_ms": -5}, "time_to_first_token_ms"),
        ({"reserved_tokens": 1}, "reserved_tokens"),
        ({"reservation_id": 0}, "reservation_id"),
        ({"reservation_id": "7"}, "reservation_id"),
        ({"agent_session_id": 0}, "agent_session_id"),
        # Strings past their limits or not text PostgreSQL can keep.
        ({"request_id": "x" * 101}, "request_id"),
        ({"request_id": ""}, "request_id"),
        ({"request_id": "a\x00b"}, "request_id"),
        ({"request_id": "line\nbreak"}, "request_id"),
        ({"error_code": "e" * 101}, "error_code"),
        ({"status": "exploded"}, "status"),
        ({"metadata": {"blob": "x" * 5_000}}, "metadata"),
        ({"metadata": {"nul": "a\x00b"}}, "metadata"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        # Wrong types.
        ({"input_tokens": "12"}, "input_tokens"),
        ({"input_tokens": 1.5}, "input_tokens"),
        ({"input_tokens": True}, "input_tokens"),
        ({"output_tokens": None}, "output_tokens"),
        ({"model_id": "seven"}, "model_id"),
        ({"cost": [1]}, "cost"),
        ({"reserved_cost": None}, "reserved_cost"),
        # Fields a client may not set, and missing required ones.
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"user_id": 1}, "user_id"),
        ({"request_id": None}, "request_id"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else value,
)
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_written(client, alice, fields, field):
    if fields.get("model") == "inactive-model":
        openai = AIProvider.objects.get(slug="openai")
        AIModel.objects.create(
            provider=openai,
            name="inactive-model",
            display_name="Retired",
            context_window=1,
            input_price_per_million=0,
            output_price_per_million=0,
            cached_input_price_per_million=0,
            is_active=False,
        )
    # None drops the provider or model name (to name them otherwise); elsewhere it is sent.
    body = {
        key: value
        for key, value in record(**fields).items()
        if not (value is None and key in ("provider", "model"))
    }
    before = written(alice)
    response = post(client, "/usage", body, alice.token)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field, error
    assert written(alice) == before


def test_an_inactive_provider_is_refused(client, alice):
    AIProvider.objects.filter(slug="openai").update(is_active=False)
    response = post(client, "/usage", record(), alice.token)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "provider"
    assert AIUsageRequest.objects.count() == 0


def test_invalid_json_and_a_non_object_body_are_4xx(client, alice):
    bad = client.post(
        "/api/v1/usage",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {alice.token}",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_request"
    listed = post(client, "/usage", [record()], alice.token)
    assert listed.status_code == 422
    assert AIUsageRequest.objects.count() == 0


# Authentication, rate limit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/usage"),
        ("post", "/usage/batch"),
        ("get", "/usage/summary"),
        ("get", "/usage/daily"),
        ("get", "/usage/monthly"),
    ],
)
def test_every_usage_endpoint_needs_a_valid_token(client, alice, method, path):
    for header in (None, "Bearer wc_not-a-token", "Basic abc"):
        extra = {"HTTP_AUTHORIZATION": header} if header else {}
        call = getattr(client, method)
        response = call(f"/api/v1{path}", content_type="application/json", **extra)
        assert response.status_code == 401, (header, response.content)
        assert response.json()["error"]["code"] == "unauthorized"
    assert AIUsageRequest.objects.count() == 0


def test_a_revoked_token_is_refused(client, alice):
    token = AccessToken.objects.get(user=alice)
    with rls.user_context(alice):
        tokens.token_revoke(user_id=alice.id, token_id=token.pk)
    response = post(client, "/usage", record(), alice.token)
    assert response.status_code == 401
    assert AIUsageRequest.objects.count() == 0


def test_the_plans_requests_per_minute_are_enforced_with_retry_after(client, alice, settings):
    settings.API_RATE_LIMITS = True
    cache.set(f"tier-rpm:{alice.id}", 2, timeout=60)  # as if the plan allowed 2 a minute
    answers = [get(client, "/usage/monthly", alice.token).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    limited = get(client, "/usage/monthly", alice.token)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_the_limit_follows_the_tier(client, alice, settings):
    from billing.models import SubscriptionTier

    settings.API_RATE_LIMITS = True
    SubscriptionTier.objects.filter(slug="free").update(requests_per_minute=1)
    assert post(client, "/usage", record(), alice.token).status_code == 201
    refused = post(client, "/usage", record(request_id="req-2"), alice.token)
    assert refused.status_code == 429 and "Retry-After" in refused
    assert AIUsageRequest.objects.filter(user=alice).count() == 1


# Reads -------------------------------------------------------------------------------------------


def test_the_summary_counts_your_days(client, alice, bob):
    post(client, "/usage", record(), alice.token)
    post(client, "/usage", record(request_id="req-2", status="error"), alice.token)
    post(client, "/usage", record(), bob.token)
    response = get(client, "/usage/summary", alice.token, days=7)
    assert response.status_code == 200
    body = response.json()
    assert body["days"] == 7 and len(body["items"]) == 7
    today = body["items"][-1]
    assert today["day"] == datetime.now(UTC).date().isoformat()
    assert body["items"][0]["cost"] == "0.000000"  # an idle day
    assert (today["requests"], today["failures"], today["tokens"]) == (2, 1, 3_000)
    assert body["totals"]["requests"] == 2
    assert body["totals"]["cost"] == "0.002500"
    assert len(get(client, "/usage/summary", alice.token).json()["items"]) == 30


@pytest.mark.parametrize("days", ["0", "367", "-1", "many", "1.5"])
def test_the_summary_window_is_1_to_366_days(client, alice, days):
    response = get(client, "/usage/summary", alice.token, days=days)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "days"


def test_daily_rows_in_a_range_and_for_one_model(client, alice, bob):
    post(client, "/usage", record(latency_ms=100), alice.token)
    post(client, "/usage", record(request_id="req-2", latency_ms=300), alice.token)
    post(client, "/usage", record(request_id="req-3", model="gpt-5"), alice.token)
    post(client, "/usage", record(), bob.token)
    today = datetime.now(UTC).date()
    response = get(
        client, "/usage/daily", alice.token, **{"from": today - timedelta(days=3), "to": today}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from"], body["to"]) == (
        (today - timedelta(days=3)).isoformat(),
        today.isoformat(),
    )
    by_model = {item["model"]: item for item in body["items"]}
    assert set(by_model) == {"gpt-5", "gpt-5-mini"}
    mini = by_model["gpt-5-mini"]
    assert (mini["day"], mini["provider"], mini["requests"], mini["total_tokens"]) == (
        today.isoformat(),
        "openai",
        2,
        3_000,
    )
    assert mini["average_latency_ms"] == 200
    only = get(client, "/usage/daily", alice.token, model="gpt-5").json()["items"]
    assert [item["model"] for item in only] == ["gpt-5"]
    earlier = get(
        client,
        "/usage/daily",
        alice.token,
        **{"from": today - timedelta(days=40), "to": today - timedelta(days=10)},
    )
    assert earlier.json()["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-10", "to": "2026-02-01"}, "from"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "from"),  # 367 days
        ({"from": "2026-02-30"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"to": "0"}, "to"),
        ({"from": "2026-01-01T00:00:00"}, "from"),
        ({"model": "gpt-9000"}, "model"),
        ({"model": "x" * 101}, "model"),
    ],
)
def test_bad_daily_filters_are_422(client, alice, params, field):
    response = get(client, "/usage/daily", alice.token, **params)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"][0]["field"] == field


def test_a_whole_year_of_days_is_allowed_and_the_calendar_edges_are_no_error(client, alice):
    year = get(client, "/usage/daily", alice.token, **{"from": "2024-01-01", "to": "2024-12-31"})
    assert year.status_code == 200
    early = get(client, "/usage/daily", alice.token, to="0001-01-05")
    assert early.status_code == 200 and early.json()["from"] == "0001-01-01"
    late = get(client, "/usage/daily", alice.token, **{"from": "9999-12-31", "to": "9999-12-31"})
    assert late.status_code == 200
    ever = get(client, "/usage/daily", alice.token, **{"from": "0001-01-01", "to": "9999-12-31"})
    assert ever.status_code == 422


def test_monthly_rows_newest_first_and_bounded(client, alice):
    for year, month in [(2025, 11), (2025, 12), (2026, 1)]:
        AIUsageMonthly.objects.create(
            user=alice, year=year, month=month, request_count=month, success_count=month
        )
    response = get(client, "/usage/monthly", alice.token)
    assert response.status_code == 200
    assert [(m["year"], m["month"]) for m in response.json()] == [
        (2026, 1),
        (2025, 12),
        (2025, 11),
    ]
    assert response.json()[0]["requests"] == 1
    assert len(get(client, "/usage/monthly", alice.token, limit=2).json()) == 2
    assert get(client, "/usage/monthly", alice.token, limit=121).status_code == 422


def test_a_token_only_ever_reads_its_own_users_usage(client, alice, bob):
    post(client, "/usage", record(), bob.token)
    AIUsageMonthly.objects.create(user=bob, year=2025, month=1, request_count=5, success_count=5)
    summary = get(client, "/usage/summary", alice.token).json()
    assert summary["totals"]["requests"] == 0
    assert get(client, "/usage/daily", alice.token).json()["items"] == []
    assert get(client, "/usage/monthly", alice.token).json() == []
    assert get(client, "/usage/summary", bob.token).json()["totals"]["requests"] == 1


# Catalog -----------------------------------------------------------------------------------------


def test_the_model_catalog_is_public_and_lists_active_models_only(client):
    AIModel.objects.filter(name="gpt-4.1").update(is_active=False)
    response = client.get("/api/v1/catalog/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.json()}
    assert "gpt-4.1" not in models
    mini = models["gpt-5-mini"]
    assert (mini["provider"], mini["context_window"], mini["input_price_per_million"]) == (
        "openai",
        400_000,
        "0.250000",
    )
    assert models["llama3.1:8b"]["is_local"] is True


def test_the_catalog_answers_with_a_token_too(client, alice):
    assert get(client, "/catalog/models", alice.token).status_code == 200
