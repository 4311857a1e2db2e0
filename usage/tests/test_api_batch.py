"""POST /api/v1/usage/batch and record_ai_usage_batch: up to 1,000 records set-wise, answered one
by one, idempotent per record, and safe when batches of the same users run at once."""

import itertools
import threading
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, connections, transaction
from django.db.models import Count, Sum
from django.test import Client

from agents.models import AgentSession
from billing.models import UsageAlert, UserQuota
from usage import services
from usage.models import AIUsageDaily, AIUsageMonthly, AIUsageRequest, AIUsageRequestKey
from witchcraft.platform import rls
from witchcraft.testing.factories import (
    AgentMessageFactory,
    AgentSessionFactory,
    UserFactory,
    api_member,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("self_reporting")]

MODELS = [("openai", "gpt-5-mini"), ("anthropic", "claude-haiku-4-5"), ("google", "gemini-2.5-pro")]
STATUSES = ["success", "success", "success", "error", "timeout"]


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.API_RATE_LIMITS = False


def member(tier: str | None = "pro"):
    """A verified user with a quota (pro: 5,000,000 tokens, $15; None: no quota) and a token."""
    return api_member(tier=tier)


@pytest.fixture
def alice():
    return member()


@pytest.fixture
def bob():
    return member()


def make_record(n: int, *, prefix: str = "r", sessions=(), **fields) -> dict:
    """A varied but deterministic record: the same n always gives the same content."""
    provider, model = MODELS[n % len(MODELS)]
    body = {
        "request_id": f"{prefix}-{n:05d}",
        "provider": provider,
        "model": model,
        "input_tokens": 100 + n % 37,
        "output_tokens": 20 + n % 11,
        "cached_input_tokens": n % 5,
        "status": STATUSES[n % len(STATUSES)],
    }
    if n % 3:
        body["latency_ms"] = 200 + n % 100
    if sessions:
        body["agent_session_id"] = sessions[n % len(sessions)].id
    body.update(fields)
    return body


def send(client, records, token):
    return client.post(
        "/api/v1/usage/batch",
        {"records": records},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def assert_totals_add_up(user) -> dict:
    """Raw rows = daily roll-up = monthly roll-up = quota (no reservations), sessions too."""
    fields = ("request_count", "total_tokens", "cost", "input_tokens", "output_tokens")
    raw = AIUsageRequest.objects.filter(user=user).aggregate(
        request_count=Count("id"),
        total_tokens=Sum("total_tokens"),
        cost=Sum("cost"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
    )
    daily = AIUsageDaily.objects.filter(user=user).aggregate(*(Sum(f) for f in fields))
    monthly = AIUsageMonthly.objects.filter(user=user).aggregate(*(Sum(f) for f in fields))
    for field in fields:
        assert daily[f"{field}__sum"] == raw[field], field
        assert monthly[f"{field}__sum"] == raw[field], field
    quota = UserQuota.objects.filter(user=user).first()
    if quota is not None:
        assert (quota.tokens_used, quota.cost_used) == (raw["total_tokens"], raw["cost"])
    assert AIUsageRequestKey.objects.filter(user=user).count() == raw["request_count"]
    for session in AgentSession.objects.filter(user=user):
        rows = AIUsageRequest.objects.filter(agent_session=session).aggregate(
            t=Sum("total_tokens"), c=Sum("cost")
        )
        assert session.total_tokens == (rows["t"] or 0)
        assert session.total_cost == (rows["c"] or 0)
    return raw


# The happy path ----------------------------------------------------------------------------------


def test_a_thousand_records_are_recorded_set_wise(client, alice, django_assert_max_num_queries):
    sessions = AgentSessionFactory.create_batch(3, user=alice)
    records = [make_record(n, sessions=sessions) for n in range(1_000)]
    # One statement records them all (not one call per record); the rest is the request's
    # authentication and row-level-security context.
    with django_assert_max_num_queries(30) as captured:
        response = send(client, records, alice.token)
    usage_statements = [q["sql"] for q in captured.captured_queries if "usage" in q["sql"]]
    assert len(usage_statements) == 1
    assert "record_ai_usage_batch" in usage_statements[0]
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert (body["recorded"], body["duplicates"], body["refused"]) == (1_000, 0, 0)
    assert [r["index"] for r in body["results"]] == list(range(1_000))
    assert all(r["status"] == "recorded" and "error" not in r for r in body["results"])
    assert len({r["id"] for r in body["results"]}) == 1_000
    assert body["results"][7]["request_id"] == "r-00007"

    raw = assert_totals_add_up(alice)
    assert raw["request_count"] == 1_000
    assert AIUsageDaily.objects.filter(user=alice).count() == len(MODELS)
    assert AIUsageMonthly.objects.get(user=alice).error_count == sum(
        1 for n in range(1_000) if STATUSES[n % len(STATUSES)] != "success"
    )
    row = AIUsageRequest.objects.get(pk=body["results"][7]["id"])
    expected = make_record(7, sessions=sessions)
    assert (row.request_id, row.input_tokens, row.output_tokens, row.agent_session_id) == (
        "r-00007",
        expected["input_tokens"],
        expected["output_tokens"],
        expected["agent_session_id"],
    )
    assert (
        sum(s.total_tokens for s in AgentSession.objects.filter(user=alice))
        == (raw["total_tokens"])
    )


def test_reservations_are_settled_once_for_the_whole_batch(client, alice):
    UserQuota.objects.filter(user=alice).update(tokens_used=10_000, cost_used=Decimal("1"))
    reservations = [
        client.post(
            "/api/v1/quota/consume",
            {"tokens": 1_000, "cost": "0.1"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {alice.token}",
        ).json()["reservation"]["id"]
        for _ in range(5)
    ]
    assert UserQuota.objects.get(user=alice).tokens_used == 15_000
    records = [make_record(n, reservation_id=reservations[n]) for n in range(5)]
    answer = send(client, records, alice.token).json()
    assert answer["recorded"] == 5, answer
    stored = AIUsageRequest.objects.filter(user=alice)
    quota = UserQuota.objects.get(user=alice)
    assert quota.tokens_used == 10_000 + sum(row.total_tokens for row in stored)
    assert quota.cost_used == Decimal("1") + sum(row.cost for row in stored)
    assert sorted(stored.values_list("reservation_id", flat=True)) == sorted(reservations)
    # The same batch again: five duplicates, nothing settled or charged twice.
    again = send(client, records, alice.token).json()
    assert again["duplicates"] == 5, again
    assert UserQuota.objects.get(user=alice).tokens_used == quota.tokens_used


def test_a_batch_raises_the_quota_alerts_it_reaches(client):
    user = member("free")  # 100,000 tokens
    records = [make_record(n, input_tokens=9_000, cached_input_tokens=0) for n in range(9)]
    assert send(client, records, user.token).json()["recorded"] == 9
    assert set(UsageAlert.objects.filter(user=user).values_list("alert_type", "metric")) >= {
        ("warning", "tokens")
    }


# Duplicates and refusals -------------------------------------------------------------------------


def test_duplicates_within_a_batch_and_across_batches(client, alice):
    first = [make_record(n) for n in range(10)]
    # Index 10 repeats record 3 exactly; index 11 reuses 4's request id with other tokens.
    first += [make_record(3), make_record(4, output_tokens=999)]
    body = send(client, first, alice.token).json()
    assert (body["recorded"], body["duplicates"], body["refused"]) == (10, 1, 1)
    results = body["results"]
    assert results[10] == {
        "index": 10,
        "request_id": "r-00003",
        "status": "duplicate",
        "id": results[3]["id"],
    }
    assert results[11]["status"] == "refused"
    assert results[11]["error"]["code"] == "conflict"
    assert results[11]["error"]["field"] == "request_id"
    assert "r-00004" in results[11]["error"]["message"]
    before = assert_totals_add_up(alice)

    # The second batch: 5 retries of the first (same content), 1 changed, 5 new.
    second = [make_record(n) for n in range(5)]
    second += [make_record(6, status="cancelled")]
    second += [make_record(n) for n in range(100, 105)]
    body = send(client, second, alice.token).json()
    assert (body["recorded"], body["duplicates"], body["refused"]) == (5, 5, 1)
    assert [r["id"] for r in body["results"][:5]] == [r["id"] for r in results[:5]]
    assert body["results"][5]["error"]["code"] == "conflict"
    after = assert_totals_add_up(alice)
    assert after["request_count"] == before["request_count"] + 5


def test_refused_records_are_reported_and_the_others_recorded(client, alice, bob):
    theirs = AgentSessionFactory(user=bob)
    their_message = AgentMessageFactory(session=theirs)
    mine = AgentSessionFactory(user=alice)
    records = [
        make_record(0),
        make_record(1, model="gpt-9000"),
        make_record(2, provider="anthropic", model="gpt-5-mini"),
        make_record(3, agent_session_id=theirs.id),
        make_record(4, agent_message_id=their_message.id),
        make_record(5, input_tokens=10, cached_input_tokens=11),
        make_record(6, reasoning_tokens=10_000),
        make_record(7, agent_session_id=mine.id),
        make_record(8, provider=None, model=None),
    ]
    records[8] = {k: v for k, v in records[8].items() if v is not None}
    before = UserQuota.objects.get(user=alice).tokens_used
    body = send(client, records, alice.token).json()
    assert (body["recorded"], body["duplicates"], body["refused"]) == (2, 0, 7)
    outcome = {r["index"]: (r["status"], r.get("error", {}).get("code")) for r in body["results"]}
    assert outcome == {
        0: ("recorded", None),
        1: ("refused", "validation_error"),
        2: ("refused", "validation_error"),
        3: ("refused", "not_found"),
        4: ("refused", "not_found"),
        5: ("refused", "validation_error"),
        6: ("refused", "validation_error"),
        7: ("recorded", None),
        8: ("refused", "validation_error"),
    }
    fields = {r["index"]: r.get("error", {}).get("field") for r in body["results"]}
    assert (fields[1], fields[2], fields[3], fields[4], fields[5], fields[6], fields[8]) == (
        "model",
        "provider",
        "agent_session_id",
        "agent_message_id",
        "cached_input_tokens",
        "reasoning_tokens",
        "model",
    )
    assert AIUsageRequest.objects.filter(user=alice).count() == 2
    assert AgentSession.objects.get(pk=theirs.pk).total_tokens == 0
    recorded = records[0]["input_tokens"] + records[0]["output_tokens"]
    recorded += records[7]["input_tokens"] + records[7]["output_tokens"]
    assert UserQuota.objects.get(user=alice).tokens_used == before + recorded
    assert_totals_add_up(alice)


def test_a_batch_of_only_refusals_writes_nothing(client, alice):
    body = send(client, [make_record(0, model="gpt-9000")], alice.token).json()
    assert (body["recorded"], body["refused"]) == (0, 1)
    assert not AIUsageRequest.objects.exists()
    assert UserQuota.objects.get(user=alice).tokens_used == 0


def test_one_agent_message_gets_one_usage_record(client, alice):
    message = AgentMessageFactory(session=AgentSessionFactory(user=alice), role="assistant")
    records = [
        make_record(0, agent_message_id=message.id),
        make_record(1, agent_message_id=message.id),
    ]
    body = send(client, records, alice.token).json()
    assert [r["status"] for r in body["results"]] == ["recorded", "refused"]
    assert body["results"][1]["error"]["field"] == "agent_message_id"
    assert AIUsageRequest.objects.get(user=alice).agent_message_id == message.id


# Whole-batch refusals ----------------------------------------------------------------------------


def test_more_than_a_thousand_records_is_422_and_nothing_is_written(client, alice):
    response = send(client, [make_record(n) for n in range(1_001)], alice.token)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "records"
    assert not AIUsageRequest.objects.exists()


def test_an_empty_batch_is_422(client, alice):
    assert send(client, [], alice.token).status_code == 422


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"input_tokens": -1}, "records.3.input_tokens"),
        ({"input_tokens": "many"}, "records.3.input_tokens"),
        ({"request_id": "x" * 101}, "records.3.request_id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "records.3.created_at"),
        (
            {"metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}},
            "records.3.metadata",
        ),
    ],
)
def test_a_record_that_does_not_fit_the_schema_refuses_the_batch(client, alice, change, field):
    records = [make_record(n) for n in range(5)]
    records[3].update(change)
    response = send(client, records, alice.token)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == field
    assert not AIUsageRequest.objects.exists()


def test_a_body_over_the_size_limit_is_413(client, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = send(client, [make_record(n) for n in range(200)], alice.token)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not AIUsageRequest.objects.exists()


def test_records_must_be_a_list_of_objects(client, alice):
    for body in ({"records": "all of them"}, {"records": [1, 2]}, {"other": []}):
        response = client.post(
            "/api/v1/usage/batch",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {alice.token}",
        )
        assert response.status_code == 422, body
        assert response.json()["error"]["details"][0]["field"].startswith("records")


# The SQL function on its own ---------------------------------------------------------------------


def batch(user, records, *, as_user=None):
    with transaction.atomic(), rls.user_context(as_user or user, may_record=True):
        return services.usage_record_batch(user_id=user.id, records=records)


def test_the_function_refuses_wrong_types_record_by_record(alice):
    results = batch(
        alice,
        [
            "not an object",
            make_record(1, input_tokens="12"),
            make_record(2, input_tokens=1.5),
            make_record(3, request_id=7),
            make_record(4, cost="0"),
            make_record(5, metadata=[1]),
            make_record(6, status=3),
            make_record(7, model_id=-2, model=None),
            make_record(8),
        ],
    )
    assert [(r.status, r.error_field) for r in results] == [
        ("refused", None),
        ("refused", "input_tokens"),
        ("refused", "input_tokens"),
        ("refused", "request_id"),
        ("refused", "cost"),
        ("refused", "metadata"),
        ("refused", "status"),
        ("refused", "model_id"),
        ("recorded", None),
    ]
    assert {r.error_code for r in results[:-1]} == {services.REFUSED_INVALID}
    assert AIUsageRequest.objects.filter(user=alice).count() == 1


def test_the_function_refuses_a_non_array_and_too_many_records(alice):
    with pytest.raises(services.UsageError) as refused:
        batch(alice, [make_record(n) for n in range(1_001)])
    assert refused.value.code == services.INVALID
    assert "at most 1000" in refused.value.message
    assert not AIUsageRequest.objects.exists()


def test_the_function_refuses_to_record_for_someone_else(alice, bob):
    with pytest.raises(services.UsageError) as refused:
        batch(alice, [make_record(0)], as_user=bob)
    assert refused.value.code == services.FORBIDDEN
    assert not AIUsageRequest.objects.exists()


def test_the_function_records_for_a_user_without_a_quota(db):
    user = UserFactory()
    results = batch(user, [make_record(n) for n in range(3)])
    assert [r.status for r in results] == ["recorded"] * 3
    assert AIUsageMonthly.objects.get(user=user).request_count == 3


def test_the_function_is_not_callable_by_anonymous_or_public(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_function_privilege('public',"
            " 'record_ai_usage_batch(bigint, jsonb, bigint)',"
            " 'EXECUTE'), has_function_privilege('witchcraft_app',"
            " 'record_ai_usage_batch(bigint, jsonb, bigint)', 'EXECUTE')"
        )
        assert cursor.fetchone() == (False, True)
    user = UserFactory()
    with pytest.raises(services.UsageError) as refused:
        batch(user, [make_record(0)], as_user=AnonymousUser())
    assert refused.value.code == services.FORBIDDEN


# Concurrency -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("tier", ["pro", None], ids=["quota", "no-quota"])
def test_concurrent_batches_for_overlapping_users_do_not_deadlock_and_add_up(tier):
    """Eight batches for two users at once, overlapping request ids and sessions, each in its
    own connection, released together: every one answers, and every total adds up (with the
    quota row as the user's lock, or without a quota row)."""
    users = [member(tier), member(tier)]
    sessions = {u.id: AgentSessionFactory.create_batch(3, user=u) for u in users}
    workers = 8
    per_batch = 300
    barrier = threading.Barrier(workers)
    answers: list[tuple[int, int, dict]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(worker: int) -> None:
        user = users[worker % 2]
        # Batches of one user overlap by half with the next one; the order is shuffled so
        # that the keys arrive in different orders.
        start = (worker // 2) * (per_batch // 2)
        numbers = list(range(start, start + per_batch))
        numbers = numbers[worker % 3 :] + numbers[: worker % 3]
        if worker % 4 == 1:
            numbers.reverse()
        records = [make_record(n, prefix="c", sessions=sessions[user.id]) for n in numbers]
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = send(client, records, user.token)
            with lock:
                answers.append((user.id, response.status_code, response.json()))
        except BaseException as exc:  # collected and asserted on below
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sorted(status for _, status, _ in answers) == [200] * workers
    for user in users:
        mine = [body for user_id, _, body in answers if user_id == user.id]
        distinct = {
            r["request_id"] for body in mine for r in body["results"] if r["status"] != "refused"
        }
        assert sum(body["refused"] for body in mine) == 0
        assert sum(body["recorded"] for body in mine) == len(distinct)
        assert sum(body["duplicates"] for body in mine) == len(mine) * per_batch - len(distinct)
        ids = {}
        for r in itertools.chain.from_iterable(body["results"] for body in mine):
            assert ids.setdefault(r["request_id"], r["id"]) == r["id"]  # one id per request
        raw = assert_totals_add_up(user)
        assert raw["request_count"] == len(distinct)
