"""Money a client cannot forge, through every recording path of the API (POST /usage, the batch,
an assistant message's usage), in the default deployment: the backend that calls the AI
providers reserves and records with its service credential, naming the user; the user's own
token may not. A made-up, foreign, settled or expired reservation changes nothing; a cost sent
by the client is refused; the stored cost is the catalog's price."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from agents.models import AgentMessage
from billing.models import QuotaReservation, UserQuota
from usage.models import AIModel, AIUsageRequest
from witchcraft.testing.factories import AgentSessionFactory, api_member, service_credential

pytestmark = pytest.mark.django_db

PATHS = ["single", "batch", "agent_message"]


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.API_RATE_LIMITS = False


class Backend:
    """The service that calls the AI providers, acting for one user over the API."""

    def __init__(self, client, raw: str, user_id: int):
        self.client = client
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_WITCHCRAFT_USER": str(user_id)}

    def post(self, path, body):
        return self.client.post(
            f"/api/v1{path}", body, content_type="application/json", **self.headers
        )

    def reserve(self, tokens: int = 20_000, cost: str = "0.20") -> int:
        response = self.post("/quota/consume", {"tokens": tokens, "cost": cost})
        assert response.status_code == 200, response.content
        return response.json()["reservation"]["id"]

    def record(self, path: str, **fields):
        """Record one request by ``path``; return (status, error code or None, field or None)."""
        usage = {
            "request_id": "req-1",
            "provider": "openai",
            "model": "gpt-5",
            "input_tokens": 10_000,
            "output_tokens": 2_000,
            **fields,
        }
        if path == "single":
            response = self.post("/usage", usage)
            body = response.json()
            error = body.get("error")
            return response.status_code, error and error["code"], error and _field(error)
        if path == "batch":
            response = self.post("/usage/batch", {"records": [usage]})
            if response.status_code != 200:
                error = response.json()["error"]
                return response.status_code, error["code"], _field(error)
            (result,) = response.json()["results"]
            status = {"recorded": 201, "duplicate": 200, "refused": 0}[result["status"]]
            error = result.get("error")
            return status, error and error["code"], error and error["field"]
        session = AgentSessionFactory(user_id=int(self.headers["HTTP_WITCHCRAFT_USER"]))
        response = self.post(
            f"/agents/sessions/{session.pk}/messages",
            {"role": "assistant", "content": "answer", "usage": usage},
        )
        error = response.json().get("error")
        return response.status_code, error and error["code"], error and _field(error)


def _field(error) -> str | None:
    details = error.get("details")
    if isinstance(details, list) and details:
        return details[0]["field"]
    if isinstance(details, dict):
        return details.get("field")
    return None


@pytest.fixture
def alice():
    return api_member()  # free: 100,000 tokens, $1.00


@pytest.fixture
def bob():
    return api_member()


@pytest.fixture
def credential():
    return service_credential()


@pytest.fixture
def backend(client, credential, alice):
    return Backend(client, credential.raw, alice.pk)


def state(user) -> tuple:
    quota = UserQuota.objects.get(user=user)
    return (
        quota.tokens_used,
        quota.cost_used,
        AIUsageRequest.objects.filter(user=user).count(),
        AgentMessage.objects.filter(user=user, role="assistant").count(),
        sorted(
            QuotaReservation.objects.filter(user=user).values_list(
                "pk", "settled_at", "released_at"
            )
        ),
    )


# gpt-5: $1.25 in, $10.00 out per 1M tokens: 10,000 in + 2,000 out = $0.0125 + $0.02.
PRICE = Decimal("0.032500")


@pytest.mark.parametrize("path", PATHS)
def test_the_stored_cost_is_the_catalogs_price_minus_nothing_forged(backend, alice, path):
    reservation = backend.reserve()
    assert backend.record(path, reservation_id=reservation)[0] == 201
    row = AIUsageRequest.objects.get(user=alice)
    model = AIModel.objects.get(name="gpt-5")
    by_hand = (
        10_000 * model.input_price_per_million + 2_000 * model.output_price_per_million
    ) / 1_000_000
    assert row.cost == by_hand == PRICE
    assert (row.input_price_per_million, row.output_price_per_million) == (
        model.input_price_per_million,
        model.output_price_per_million,
    )
    quota = UserQuota.objects.get(user=alice)
    assert (quota.tokens_used, quota.cost_used) == (12_000, PRICE)
    assert QuotaReservation.objects.get(pk=reservation).usage_id == row.pk


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("field", "value"), [("cost", "0"), ("reserved_tokens", 10_000_000), ("reserved_cost", "10000")]
)
def test_a_forged_amount_is_refused_and_changes_nothing(backend, alice, path, field, value):
    backend.reserve()
    before = state(alice)
    status, code, named = backend.record(path, **{field: value})
    assert (status, code) == (422, "validation_error")
    assert named.endswith(field)
    assert state(alice) == before


@pytest.mark.parametrize("path", PATHS)
def test_a_made_up_reservation_changes_nothing(backend, alice, path):
    backend.reserve()
    before = state(alice)
    status, code, named = backend.record(path, reservation_id=10**12)
    assert code == "not_found" and named.endswith("reservation_id")
    assert status in (404, 0)  # 0: refused within a batch answered 200
    assert state(alice) == before


@pytest.mark.parametrize("path", PATHS)
def test_a_foreign_reservation_changes_nothing(client, credential, backend, alice, bob, path):
    theirs = Backend(client, credential.raw, bob.pk).reserve(50_000, "0.50")
    before, bobs = state(alice), state(bob)
    status, code, named = backend.record(path, reservation_id=theirs)
    assert code == "not_found" and named.endswith("reservation_id")
    assert status in (404, 0)
    assert (state(alice), state(bob)) == (before, bobs)


@pytest.mark.parametrize("path", PATHS)
def test_a_reused_reservation_changes_nothing(backend, alice, path):
    reservation = backend.reserve()
    assert backend.record(path, request_id="first", reservation_id=reservation)[0] == 201
    before = state(alice)
    status, code, named = backend.record(path, request_id="second", reservation_id=reservation)
    assert code == "conflict" and named.endswith("reservation_id")
    assert status in (409, 0)
    assert state(alice) == before


@pytest.mark.parametrize("path", PATHS)
def test_an_expired_reservation_changes_nothing(backend, alice, path):
    reservation = backend.reserve()
    past = timezone.now() - timedelta(hours=1)
    QuotaReservation.objects.filter(pk=reservation).update(
        created_at=past - timedelta(minutes=15), expires_at=past
    )
    status, code, named = backend.record(path, reservation_id=reservation)
    assert code == "conflict" and named.endswith("reservation_id")
    assert status in (409, 0)
    # Nothing recorded nor settled; the expired hold itself may have been given back on the way
    # (the batch function releases a user's expired holds first; record_ai_usage's refusal
    # undoes everything, and the next call or the worker releases it).
    tokens_used, cost_used, rows, messages, reservations = state(alice)
    assert (rows, messages) == (0, 0)
    assert (tokens_used, cost_used) in ((20_000, Decimal("0.20")), (0, Decimal(0)))
    assert reservations[0][1] is None  # never settled


def test_an_expired_hold_comes_back_without_the_worker(backend, alice, client):
    reservation = backend.reserve(90_000, "0.90")
    QuotaReservation.objects.filter(pk=reservation).update(
        created_at=timezone.now() - timedelta(hours=1),
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    # 20,000 more fit only once the 90,000 held are given back: the next call does it.
    backend.reserve(20_000, "0.20")
    assert UserQuota.objects.get(user=alice).tokens_used == 20_000


# Who may record ----------------------------------------------------------------------------------


def _as_user(client, alice, method, path, body=None):
    return getattr(client, method)(
        f"/api/v1{path}",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {alice.token}",
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/quota/consume", {"tokens": 1}),
        ("/usage", {"request_id": "r", "model": "gpt-5", "input_tokens": 1, "output_tokens": 1}),
        ("/usage/batch", {"records": [{"request_id": "r"}]}),
    ],
)
def test_by_default_a_users_own_token_may_not_reserve_or_record(client, alice, path, body):
    before = state(alice)
    response = _as_user(client, alice, "post", path, body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert state(alice) == before
    assert _as_user(client, alice, "get", "/quota").status_code == 200


def test_by_default_an_assistant_message_with_usage_needs_the_recording_scope(client, alice):
    session = AgentSessionFactory(user=alice)
    path = f"/agents/sessions/{session.pk}/messages"
    usage = {"request_id": "r", "provider": "openai", "model": "gpt-5"}
    usage |= {"input_tokens": 1, "output_tokens": 1}
    body = {"role": "assistant", "content": "a", "usage": usage}
    refused = _as_user(client, alice, "post", path, body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert (
        _as_user(client, alice, "post", path, {"role": "user", "content": "hi"}).status_code == 201
    )
    assert not AIUsageRequest.objects.filter(user=alice).exists()


def test_with_self_reporting_the_users_token_records_priced_by_the_server(client, settings):
    settings.USAGE_SELF_REPORTING = True
    alice = api_member()
    response = _as_user(client, alice, "post", "/quota/consume", {"tokens": 20_000})
    assert response.status_code == 200, response.content
    body = {"request_id": "own", "provider": "openai", "model": "gpt-5"}
    body |= {"input_tokens": 10_000, "output_tokens": 2_000}
    body["reservation_id"] = response.json()["reservation"]["id"]
    recorded = _as_user(client, alice, "post", "/usage", body)
    assert recorded.status_code == 201, recorded.content
    assert recorded.json()["cost"] == str(PRICE)
    assert UserQuota.objects.get(user=alice).cost_used == PRICE


# Concurrency -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_batches_naming_one_reservation_settle_it_once():
    """Eight batches race, each with its own request id and the same reservation: one is
    recorded, seven refused, and the quota is charged once."""
    alice = api_member()
    raw = service_credential().raw
    reservation = Backend(Client(), raw, alice.pk).reserve()
    count = 8
    barrier = threading.Barrier(count)
    statuses: list[str] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        try:
            backend = Backend(Client(), raw, alice.pk)
            barrier.wait(timeout=30)
            response = backend.post(
                "/usage/batch",
                {
                    "records": [
                        {
                            "request_id": f"race-{index}",
                            "provider": "openai",
                            "model": "gpt-5",
                            "input_tokens": 10_000,
                            "output_tokens": 2_000,
                            "reservation_id": reservation,
                        }
                    ]
                },
            )
            with lock:
                statuses.append(response.json()["results"][0]["status"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == ["recorded"] + ["refused"] * 7
    quota = UserQuota.objects.get(user=alice)
    assert (quota.tokens_used, quota.cost_used) == (12_000, PRICE)
