"""The quota part of the JSON API: GET /quota, POST /quota/consume, GET /catalog/tiers."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client

from billing.models import QuotaReservation, SubscriptionTier, UsageAlert, UserQuota
from witchcraft.testing.factories import api_member

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("self_reporting")]


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    """The free plan allows 10 requests a minute; the 429 test turns the limit back on."""
    settings.API_RATE_LIMITS = False


def member(tier: str | None = "free"):
    """A verified user with a quota of ``tier`` (free: 100,000 tokens, $1.00) and a token."""
    return api_member(tier=tier)


@pytest.fixture
def alice():
    return member()


@pytest.fixture
def bob():
    return member()


def consume(client, token, **body):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/quota/consume", body, content_type="application/json", **extra)


def quota(client, token):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get("/api/v1/quota", **extra)


def used(user) -> tuple[int, Decimal]:
    row = UserQuota.objects.get(user=user)
    return row.tokens_used, row.cost_used


# GET /quota --------------------------------------------------------------------------------------


def test_the_quota_shows_limits_use_and_the_period(client, alice):
    UserQuota.objects.filter(user=alice).update(tokens_used=25_000, cost_used=Decimal("0.9"))
    response = quota(client, alice.token)
    assert response.status_code == 200
    body = response.json()
    assert body["tokens"] == {
        "limit": 100_000,
        "used": 25_000,
        "remaining": 75_000,
        "percent_used": "25.00",
    }
    assert body["cost"] == {
        "limit": "1.000000",
        "used": "0.900000",
        "remaining": "0.100000",
        "percent_used": "90.00",
    }
    start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(body["period"]["start"]) == start
    assert datetime.fromisoformat(body["period"]["end"]) == (start + timedelta(days=32)).replace(
        day=1
    )


def test_an_ended_period_reads_as_the_current_month_unused(client, alice):
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    UserQuota.objects.filter(user=alice).update(
        period_start=(this_month - timedelta(days=1)).replace(day=1),
        period_end=this_month,
        tokens_used=99_000,
    )
    body = quota(client, alice.token).json()
    assert body["tokens"]["used"] == 0
    assert datetime.fromisoformat(body["period"]["start"]) == this_month


def test_no_quota_is_404(client):
    user = member(tier=None)
    response = quota(client, user.token)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_token_reads_only_its_own_users_quota(client, alice, bob):
    UserQuota.objects.filter(user=bob).update(tokens_used=50_000)
    assert quota(client, alice.token).json()["tokens"]["used"] == 0
    assert quota(client, bob.token).json()["tokens"]["used"] == 50_000


# POST /quota/consume -----------------------------------------------------------------------------


def test_a_reservation_within_the_limits_is_taken(client, alice):
    response = consume(client, alice.token, tokens=4_000, cost="0.25")
    assert response.status_code == 200
    reservation = QuotaReservation.objects.get(user=alice)
    body = response.json()
    expires_at = datetime.fromisoformat(body["reservation"].pop("expires_at"))
    assert abs(expires_at - reservation.expires_at) < timedelta(milliseconds=1)
    assert body == {
        "allowed": True,
        "tokens_remaining": 96_000,
        "cost_remaining": "0.750000",
        "reservation": {"id": reservation.pk, "tokens": 4_000, "cost": "0.250000"},
    }
    assert used(alice) == (4_000, Decimal("0.25"))


def test_the_cost_estimate_defaults_to_zero_and_numbers_are_accepted(client, alice):
    assert consume(client, alice.token, tokens=10).json()["reservation"]["cost"] == "0.000000"
    assert consume(client, alice.token, tokens=0, cost=0.125).status_code == 200
    assert used(alice) == (10, Decimal("0.125"))


def test_a_reservation_can_use_the_quota_up_exactly(client, alice):
    assert consume(client, alice.token, tokens=100_000, cost="1").status_code == 200
    assert used(alice) == (100_000, Decimal("1"))
    assert UsageAlert.objects.filter(user=alice, alert_type="exceeded").count() == 2


@pytest.mark.parametrize(
    ("already", "body", "reason"),
    [
        ((99_000, "0"), {"tokens": 1_001, "cost": "0"}, "tokens_exceeded"),
        ((0, "0.99"), {"tokens": 10, "cost": "0.02"}, "cost_exceeded"),
    ],
)
def test_an_estimate_past_the_limits_is_402_and_reserves_nothing(
    client, alice, already, body, reason
):
    UserQuota.objects.filter(user=alice).update(
        tokens_used=already[0], cost_used=Decimal(already[1])
    )
    before = used(alice)
    response = consume(client, alice.token, **body)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"]["reason"] == reason
    assert error["details"]["tokens_remaining"] == 100_000 - already[0]
    assert Decimal(error["details"]["cost_remaining"]) == Decimal(1) - Decimal(already[1])
    assert used(alice) == before


def test_consuming_without_a_quota_is_402(client):
    user = member(tier=None)
    response = consume(client, user.token, tokens=1)
    assert response.status_code == 402
    assert response.json()["error"]["details"]["reason"] == "no_quota"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tokens": -1}, "tokens"),
        ({"tokens": 10_000_001}, "tokens"),
        ({"tokens": "5"}, "tokens"),
        ({"tokens": 2.5}, "tokens"),
        ({"tokens": None}, "tokens"),
        ({"cost": "1"}, "tokens"),
        ({"tokens": 1, "cost": "-0.01"}, "cost"),
        ({"tokens": 1, "cost": "10000.000001"}, "cost"),
        ({"tokens": 1, "cost": "Infinity"}, "cost"),
        ({"tokens": 1, "cost": "lots"}, "cost"),
        ({"tokens": 1, "user_id": 2}, "user_id"),
    ],
)
def test_bad_estimates_are_422_naming_the_field(client, alice, body, field):
    response = consume(client, alice.token, **body)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"][0]["field"] == field
    assert used(alice) == (0, Decimal(0))


def test_a_token_consumes_only_its_own_users_quota(client, alice, bob):
    consume(client, alice.token, tokens=1_000)
    assert used(alice) == (1_000, Decimal(0))
    assert used(bob) == (0, Decimal(0))


@pytest.mark.parametrize("header", [None, "Bearer wc_nope", "Token abc"])
def test_the_quota_needs_a_valid_token(client, alice, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    assert client.get("/api/v1/quota", **extra).status_code == 401
    response = client.post(
        "/api/v1/quota/consume", {"tokens": 1}, content_type="application/json", **extra
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert used(alice) == (0, Decimal(0))


def test_consuming_is_rate_limited_by_the_plan(client, alice, settings):
    settings.API_RATE_LIMITS = True
    cache.set(f"tier-rpm:{alice.id}", 3, timeout=60)
    statuses = [consume(client, alice.token, tokens=1).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = consume(client, alice.token, tokens=1)
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert used(alice)[0] == 3


def test_the_client_flow_books_only_the_actual_amount(client, alice):
    reservation = consume(client, alice.token, tokens=5_000, cost="0.05").json()["reservation"]
    assert used(alice) == (5_000, Decimal("0.05"))
    recorded = client.post(
        "/api/v1/usage",
        {
            "request_id": "flow-1",
            "provider": "openai",
            "model": "gpt-5-mini",
            "input_tokens": 1_000,
            "output_tokens": 500,
            "reservation_id": reservation["id"],
        },
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {alice.token}",
    )
    assert recorded.status_code == 201
    body = quota(client, alice.token).json()
    assert (body["tokens"]["used"], body["cost"]["used"]) == (1_500, "0.001250")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_reservations_never_overspend():
    """Ten requests of 20,000 tokens against 100,000 released together: exactly five pass."""
    user = member()
    workers = 10
    barrier = threading.Barrier(workers)
    statuses: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            status = consume(client, user.token, tokens=20_000).status_code
            with lock:
                statuses.append(status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] * 5 + [402] * 5
    assert used(user)[0] == 100_000


# GET /catalog/tiers ------------------------------------------------------------------------------


def test_the_public_tiers_are_listed_without_a_token(client):
    SubscriptionTier.objects.create(
        slug="secret",
        name="Secret",
        monthly_token_limit=1,
        monthly_cost_limit=0,
        requests_per_minute=1,
        is_public=False,
    )
    response = client.get("/api/v1/catalog/tiers")
    assert response.status_code == 200
    tiers = response.json()
    slugs = [t["slug"] for t in tiers]
    assert slugs[:2] == ["free", "pro"] and "secret" not in slugs
    free = tiers[0]
    assert (free["monthly_token_limit"], free["monthly_cost_limit"], free["monthly_price"]) == (
        100_000,
        "1.000000",
        "0.000000",
    )
    assert free["requests_per_minute"] == 10
    assert isinstance(free["features"], dict)


def test_an_inactive_tier_is_not_listed(client, alice):
    SubscriptionTier.objects.filter(slug="team").update(is_active=False)
    slugs = [t["slug"] for t in client.get("/api/v1/catalog/tiers").json()]
    assert "team" not in slugs and "pro" in slugs
    with_token = client.get("/api/v1/catalog/tiers", HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    assert [t["slug"] for t in with_token.json()] == slugs
