"""The agents API (/api/v1/agents/): through the HTTP client with real bearer tokens, each
request in its user's row-level-security context, on the real database."""

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import tokens
from agents import services
from agents.models import AgentFeedback, AgentMessage, AgentSession, AgentToolCall
from billing.models import UserQuota
from usage import services as usage_services
from usage.models import AIModel, AIUsageRequest
from witchcraft.platform import rls
from witchcraft.testing.factories import (
    AgentMessageFactory,
    AgentSessionFactory,
    UserFactory,
    catalog_model,
    quota_for,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("self_reporting")]
BASE = "/api/v1/agents"


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    """Flows here make more calls than the free plan's minute allows (tested elsewhere)."""
    settings.API_RATE_LIMITS = False


class Caller:
    """The Django test client speaking JSON with one bearer token."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.headers = {} if token is None else {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def get(self, path, **params):
        return self.client.get(BASE + path, params, **self.headers)

    def send(self, method: str, path: str, body=None, *, raw: str | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return getattr(self.client, method)(
            BASE + path, data=data, content_type="application/json", **self.headers
        )

    def post(self, path, body=None, **kwargs):
        return self.send("post", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.send("patch", path, body, **kwargs)


def _account(**fields):
    user = UserFactory(email_verified_at=timezone.now(), **fields)
    quota_for(user)
    return user


def _token(user) -> str:
    with transaction.atomic(), rls.user_context(user):
        return tokens.token_issue(user_id=user.pk, name="agent tests").raw


@pytest.fixture
def me():
    return _account()


@pytest.fixture
def api(client, me):
    return Caller(client, _token(me))


@pytest.fixture
def theirs():
    """Another user's session with a message and a tool call."""
    other = _account()
    session = AgentSessionFactory(user=other)
    message = AgentMessageFactory(session=session, role="assistant", position=1)
    call = AgentToolCall.objects.create(session=session, user=other, tool_name="search")
    return session, message, call


def _usage(**fields):
    return {
        "provider": "openai",
        "model": "gpt-5-mini",
        "input_tokens": 1_000,
        "output_tokens": 200,
        "request_id": "req-1",
        **fields,
    }


def _written() -> dict:
    """Row counts of everything the agents API may write."""
    return {
        "sessions": AgentSession.objects.count(),
        "messages": AgentMessage.objects.count(),
        "tool_calls": AgentToolCall.objects.count(),
        "feedback": AgentFeedback.objects.count(),
        "usage": AIUsageRequest.objects.count(),
        "ended": AgentSession.objects.filter(is_active=False).count(),
        "finished": AgentToolCall.objects.exclude(status__in=["pending", "running"]).count(),
    }


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    return error


def _fields(error: dict) -> list[str]:
    return [detail["field"] for detail in error.get("details") or []]


# --- the flow ------------------------------------------------------------------------------


def test_the_agent_flow_end_to_end(api, me):
    model = catalog_model("gpt-5-mini")
    quota_before = UserQuota.objects.get(user=me)

    created = api.post(
        "/sessions", {"title": "Trip", "model": "gpt-5-mini", "metadata": {"client": "cli"}}
    )
    assert created.status_code == 201, created.content
    session = created.json()
    assert session["title"] == "Trip" and session["model"] == "gpt-5-mini"
    assert session["agent_name"] == "assistant" and session["is_active"] is True
    assert session["metadata"] == {"client": "cli"} and session["message_count"] == 0
    sid = session["id"]
    assert AgentSession.objects.get(pk=sid).user_id == me.pk

    asked = api.post(f"/sessions/{sid}/messages", {"role": "user", "content": "Plan a trip"})
    assert asked.status_code == 201, asked.content
    assert asked.json()["position"] == 1 and asked.json()["usage_id"] is None

    usage = _usage(cached_input_tokens=400, reasoning_tokens=50, latency_ms=900)
    answered = api.post(
        f"/sessions/{sid}/messages",
        {"role": "assistant", "content": "Here is a plan", "usage": usage},
    )
    assert answered.status_code == 201, answered.content
    answer = answered.json()
    assert answer["position"] == 2 and answer["model"] == "gpt-5-mini"
    assert (answer["input_tokens"], answer["output_tokens"], answer["latency_ms"]) == (
        1_000,
        200,
        900,
    )
    row = AIUsageRequest.objects.get(request_id="req-1")
    assert row.pk == answer["usage_id"] and row.user_id == me.pk
    assert (row.agent_session_id, row.agent_message_id) == (sid, answer["id"])
    assert (row.model_id, row.cached_input_tokens, row.reasoning_tokens) == (model.pk, 400, 50)
    # (600 * 0.25 + 400 * 0.025 + 200 * 2.00) / 1M
    assert row.cost == Decimal("0.000560")

    quota = UserQuota.objects.get(user=me)
    assert quota.tokens_used == quota_before.tokens_used + 1_200
    assert quota.cost_used == quota_before.cost_used + Decimal("0.000560")

    started = api.post(
        f"/sessions/{sid}/tool-calls",
        {"tool_name": "search", "arguments": {"q": "flights"}, "message_id": answer["id"]},
    )
    assert started.status_code == 201, started.content
    call = started.json()
    assert call["status"] == "pending" and call["completed_at"] is None
    # Started two seconds before the database's now (the test's transaction start).
    AgentToolCall.objects.filter(pk=call["id"]).update(started_at=Now() - timedelta(seconds=2))
    finished = api.patch(
        f"/sessions/{sid}/tool-calls/{call['id']}",
        {"status": "success", "result": {"hits": [1, 2]}},
    )
    assert finished.status_code == 200, finished.content
    call = finished.json()
    assert call["status"] == "success" and call["result"] == {"hits": [1, 2]}
    assert call["completed_at"] is not None and 2_000 <= call["duration_ms"] < 60_000

    rated = api.post(
        f"/sessions/{sid}/feedback",
        {"rating": 5, "comment": "great", "category": "helpful", "message_id": answer["id"]},
    )
    assert rated.status_code == 201, rated.content
    assert rated.json()["rating"] == 5 and rated.json()["message_id"] == answer["id"]

    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW agent_session_stats")
    detail = api.get(f"/sessions/{sid}")
    assert detail.status_code == 200, detail.content
    body = detail.json()
    counted = body["session"]
    assert (counted["message_count"], counted["tool_call_count"]) == (2, 1)
    assert (counted["input_tokens"], counted["output_tokens"], counted["total_tokens"]) == (
        1_000,
        200,
        1_200,
    )
    assert Decimal(counted["total_cost"]) == Decimal("0.000560")
    assert [m["position"] for m in body["messages"]] == [1, 2]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    assert body["messages"][1]["usage_id"] == row.pk and body["messages_truncated"] is False
    assert [c["id"] for c in body["tool_calls"]] == [call["id"]]
    assert [f["rating"] for f in body["feedback"]] == [5]
    assert body["stats"]["assistant_messages"] == 1 and body["stats"]["tool_calls"] == 1
    assert body["stats"]["feedback_count"] == 1

    ended = api.post(f"/sessions/{sid}/end")
    assert ended.status_code == 200, ended.content
    assert ended.json()["is_active"] is False and ended.json()["ended_at"] is not None
    again = api.post(f"/sessions/{sid}/end")
    assert again.status_code == 200 and again.json() == ended.json()

    late = api.post(f"/sessions/{sid}/messages", {"role": "user", "content": "one more"})
    _error(late, 409, "conflict")
    assert late.json()["error"]["message"] == services.SESSION_ENDED
    _error(api.post(f"/sessions/{sid}/tool-calls", {"tool_name": "x"}), 409, "conflict")
    # Feedback comes after the end too; giving it again replaces it.
    changed = api.post(f"/sessions/{sid}/feedback", {"rating": 2, "message_id": answer["id"]})
    assert changed.status_code == 200 and changed.json()["id"] == rated.json()["id"]
    assert AgentFeedback.objects.get(pk=changed.json()["id"]).rating == 2
    assert AgentMessage.objects.filter(session_id=sid).count() == 2


def test_a_minimal_session_takes_the_database_defaults(api):
    created = api.post("/sessions")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["title"], body["agent_name"], body["model"]) == ("", "assistant", None)
    assert body["metadata"] == {} and Decimal(body["total_cost"]) == 0
    assert body["started_at"] == body["last_activity_at"] and body["ended_at"] is None


def test_retrying_an_assistant_message_returns_the_first_one_and_records_nothing(api, me):
    sid = api.post("/sessions").json()["id"]
    body = {"role": "assistant", "content": "answer", "usage": _usage(request_id="r-7")}
    first = api.post(f"/sessions/{sid}/messages", body)
    assert first.status_code == 201, first.content
    before = _written()
    retry = api.post(f"/sessions/{sid}/messages", body)
    assert retry.status_code == 200, retry.content
    assert retry.json() == first.json()
    assert _written() == before
    session = AgentSession.objects.get(pk=sid)
    assert (session.message_count, session.total_tokens) == (1, 1_200)


@pytest.mark.parametrize(
    "where, change",
    [
        ("other session", {}),
        ("same session", {"content": "another answer"}),
        ("same session", {"usage": {"output_tokens": 201}}),
        ("same session", {"usage": {"model": "gpt-5"}}),
        ("same session", {"usage": {"status": "error"}}),
    ],
)
def test_a_request_id_reused_elsewhere_or_differently_is_a_conflict(api, where, change):
    one = api.post("/sessions").json()["id"]
    two = api.post("/sessions").json()["id"] if where == "other session" else one
    first = {"role": "assistant", "content": "a", "usage": _usage(request_id="shared")}
    assert api.post(f"/sessions/{one}/messages", first).status_code == 201
    again = {**first, **change, "usage": {**first["usage"], **change.get("usage", {})}}
    before = _written()
    error = _error(api.post(f"/sessions/{two}/messages", again), 409, "conflict")
    assert _fields(error) == ["usage.request_id"]
    assert _written() == before


def test_a_request_id_of_a_plain_usage_record_is_a_conflict(api, me):
    model = catalog_model()
    with transaction.atomic(), rls.user_context(me, may_record=True):
        usage_services.usage_record(
            user_id=me.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=1,
            output_tokens=1,
            request_id="plain",
        )
    sid = api.post("/sessions").json()["id"]
    before = _written()
    body = {"role": "assistant", "content": "a", "usage": _usage(request_id="plain")}
    error = _error(api.post(f"/sessions/{sid}/messages", body), 409, "conflict")
    assert error["message"] == services.REQUEST_ID_USED
    assert _written() == before


def test_message_fields_default_to_the_usage_and_may_repeat_it(api):
    sid = api.post("/sessions").json()["id"]
    body = {
        "role": "assistant",
        "content": "a",
        "model": "gpt-5-mini",
        "input_tokens": 7,
        "usage": _usage(),
    }
    answer = api.post(f"/sessions/{sid}/messages", body).json()
    assert (answer["model"], answer["input_tokens"], answer["output_tokens"]) == (
        "gpt-5-mini",
        7,
        200,
    )


def test_a_usage_refused_by_the_database_writes_nothing(api, me):
    """The session's total would overflow numeric(12,6): record_ai_usage's trigger refuses."""
    sid = api.post("/sessions").json()["id"]
    AgentSession.objects.filter(pk=sid).update(total_cost=Decimal("999999"))
    before = _written()
    quota = UserQuota.objects.get(user=me)
    response = api.post(
        f"/sessions/{sid}/messages",
        {"role": "assistant", "content": "a", "usage": _usage(output_tokens=10_000_000)},
    )
    assert _fields(_error(response, 422, "validation_error")) == ["usage"]
    assert _written() == before
    assert UserQuota.objects.get(user=me).tokens_used == quota.tokens_used


def test_tool_calls_run_then_finish_once(api):
    sid = api.post("/sessions").json()["id"]
    call = api.post(f"/sessions/{sid}/tool-calls", {"tool_name": "fetch", "status": "running"})
    assert call.status_code == 201 and call.json()["status"] == "running"
    cid = call.json()["id"]
    path = f"/sessions/{sid}/tool-calls/{cid}"
    still = api.patch(path, {"status": "running"})
    assert still.status_code == 200 and still.json()["completed_at"] is None
    failed = api.patch(path, {"status": "error", "error": "timeout", "result": [1, "two"]})
    assert failed.status_code == 200, failed.content
    assert failed.json()["error"] == "timeout" and failed.json()["result"] == [1, "two"]
    assert failed.json()["duration_ms"] >= 0
    before = _written()
    for status in ("success", "running", "error", "cancelled"):
        refused = api.patch(path, {"status": status})
        _error(refused, 409, "conflict")
        assert refused.json()["error"]["message"] == services.TOOL_CALL_FINISHED
    assert _written() == before
    assert AgentToolCall.objects.get(pk=cid).error == "timeout"


def test_a_tool_call_finishes_after_its_session_ended(api):
    sid = api.post("/sessions").json()["id"]
    cid = api.post(f"/sessions/{sid}/tool-calls", {"tool_name": "x"}).json()["id"]
    api.post(f"/sessions/{sid}/end")
    done = api.patch(f"/sessions/{sid}/tool-calls/{cid}", {"status": "cancelled"})
    assert done.status_code == 200 and done.json()["status"] == "cancelled"


def test_feedback_on_the_session_and_on_a_message_are_separate_and_replaced(api):
    sid = api.post("/sessions").json()["id"]
    mid = api.post(f"/sessions/{sid}/messages", {"role": "assistant", "content": "a"}).json()["id"]
    whole = api.post(f"/sessions/{sid}/feedback", {"rating": 4})
    on_message = api.post(f"/sessions/{sid}/feedback", {"rating": 1, "message_id": mid})
    assert (whole.status_code, on_message.status_code) == (201, 201)
    assert whole.json()["message_id"] is None
    replaced = api.post(f"/sessions/{sid}/feedback", {"rating": 3, "category": "slow"})
    assert replaced.status_code == 200 and replaced.json()["id"] == whole.json()["id"]
    assert AgentFeedback.objects.filter(session_id=sid).count() == 2
    assert AgentFeedback.objects.get(pk=whole.json()["id"]).category == "slow"


# --- who may call what ----------------------------------------------------------------------

ENDPOINTS = [
    ("get", "/sessions/{sid}", None),
    ("post", "/sessions/{sid}/messages", {"role": "user", "content": "hi"}),
    ("post", "/sessions/{sid}/tool-calls", {"tool_name": "search"}),
    ("patch", "/sessions/{sid}/tool-calls/{cid}", {"status": "success"}),
    ("post", "/sessions/{sid}/feedback", {"rating": 5}),
    ("post", "/sessions/{sid}/end", None),
]


def _call(caller: Caller, method: str, path: str, body):
    return caller.get(path) if method == "get" else caller.send(method, path, body)


@pytest.mark.parametrize(
    "method, path, body", [("get", "/sessions", None), ("post", "/sessions", {}), *ENDPOINTS]
)
@pytest.mark.parametrize("token", [None, "", "wc_not-a-token", "Basic abc"])
def test_every_endpoint_wants_a_valid_token(client, theirs, method, path, body, token):
    session, _, call = theirs
    caller = Caller(client, None)
    if token is not None:
        caller.headers = {"HTTP_AUTHORIZATION": token if " " in token else f"Bearer {token}"}
    before = _written()
    response = _call(caller, method, path.format(sid=session.pk, cid=call.pk), body)
    _error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert _written() == before


def test_a_revoked_token_is_refused(client, me):
    issued = _token(me)
    caller = Caller(client, issued)
    assert caller.get("/sessions").status_code == 200
    with transaction.atomic(), rls.user_context(me):
        tokens.tokens_revoke_all(user_id=me.pk)
    _error(caller.get("/sessions"), 401, "unauthorized")


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
def test_another_users_session_is_not_found_in_every_endpoint(api, theirs, method, path, body):
    session, _, call = theirs
    before = _written()
    _error(_call(api, method, path.format(sid=session.pk, cid=call.pk), body), 404, "not_found")
    assert _written() == before
    assert AgentToolCall.objects.get(pk=call.pk).status == "pending"
    assert AgentSession.objects.get(pk=session.pk).is_active


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
@pytest.mark.parametrize("missing", [0, -1, 987_654_321, 2**63 - 1, 2**70])
def test_ids_that_do_not_exist_are_not_found(api, method, path, body, missing):
    _error(_call(api, method, path.format(sid=missing, cid=missing), body), 404, "not_found")


def test_another_users_tool_call_is_not_found_through_my_session(api, theirs):
    _, _, call = theirs
    mine = api.post("/sessions").json()["id"]
    response = api.patch(f"/sessions/{mine}/tool-calls/{call.pk}", {"status": "success"})
    _error(response, 404, "not_found")
    assert AgentToolCall.objects.get(pk=call.pk).status == "pending"


def test_my_tool_call_is_not_found_through_another_of_my_sessions(api):
    one = api.post("/sessions").json()["id"]
    two = api.post("/sessions").json()["id"]
    cid = api.post(f"/sessions/{one}/tool-calls", {"tool_name": "x"}).json()["id"]
    _error(api.patch(f"/sessions/{two}/tool-calls/{cid}", {"status": "success"}), 404, "not_found")


@pytest.mark.parametrize(
    "path, body",
    [
        ("/sessions/{sid}/tool-calls", {"tool_name": "search", "message_id": "{mid}"}),
        ("/sessions/{sid}/feedback", {"rating": 5, "message_id": "{mid}"}),
    ],
)
@pytest.mark.parametrize("whose", ["another user's", "my other session's", "nobody's"])
def test_a_message_not_of_this_session_is_not_found(api, me, theirs, path, body, whose):
    sid = api.post("/sessions").json()["id"]
    other_session = api.post("/sessions").json()["id"]
    mid = {
        "another user's": theirs[1].pk,
        "my other session's": api.post(
            f"/sessions/{other_session}/messages", {"role": "assistant", "content": "a"}
        ).json()["id"],
        "nobody's": 987_654_321,
    }[whose]
    payload = {key: (mid if value == "{mid}" else value) for key, value in body.items()}
    before = _written()
    error = _error(api.post(path.format(sid=sid), payload), 404, "not_found")
    assert error["message"] == services.NO_SUCH_MESSAGE and _fields(error) == ["message_id"]
    assert _written() == before


def test_the_list_shows_only_my_sessions_even_to_an_admin(client, theirs):
    admin = _account(is_staff=True)
    AgentSessionFactory(user=admin, title="mine")
    caller = Caller(client, _token(admin))
    listed = caller.get("/sessions").json()["items"]
    assert [s["title"] for s in listed] == ["mine"]
    _error(caller.get(f"/sessions/{theirs[0].pk}"), 404, "not_found")
    _error(caller.post(f"/sessions/{theirs[0].pk}/end"), 404, "not_found")
    assert AgentSession.objects.get(pk=theirs[0].pk).is_active


# --- bad input --------------------------------------------------------------------------------

LONG_JSON = {"k": "x" * 17_000}
DEEP_JSON: dict = {}
_node = DEEP_JSON
for _ in range(40):
    _node["a"] = {}
    _node = _node["a"]

SESSION_CASES = [
    ({"title": "x" * 201}, "title"),
    ({"title": 5}, "title"),
    ({"title": "a\x00b"}, "title"),
    ({"title": "\ud800"}, "title"),
    ({"agent_name": ""}, "agent_name"),
    ({"agent_name": "x" * 101}, "agent_name"),
    ({"model": "gpt-17"}, "model"),
    ({"model": ""}, "model"),
    ({"model": "gpt-4.1"}, "model"),  # deactivated by the test
    ({"metadata": ["a"]}, "metadata"),
    ({"metadata": "x"}, "metadata"),
    ({"metadata": LONG_JSON}, "metadata"),
    ({"metadata": DEEP_JSON}, "metadata"),
    ({"metadata": {"k": "\x00"}}, "metadata"),
    ({"metadata": {"\x00": 1}}, "metadata"),
]


@pytest.mark.parametrize("body, field", SESSION_CASES)
def test_a_bad_session_is_refused_naming_the_field(api, body, field):
    AIModel.objects.filter(name="gpt-4.1").update(is_active=False)
    before = _written()
    error = _error(api.post("/sessions", body), 422, "validation_error")
    assert _fields(error) == [field], error
    assert _written() == before


MESSAGE_CASES = [
    ({"role": "robot", "content": "x"}, "role"),
    ({"content": "x"}, "role"),
    ({"role": "user"}, "content"),
    ({"role": "user", "content": "x" * 100_001}, "content"),
    ({"role": "user", "content": None}, "content"),
    ({"role": "user", "content": "\x00"}, "content"),
    ({"role": "user", "content": "x", "input_tokens": -1}, "input_tokens"),
    ({"role": "user", "content": "x", "latency_ms": 10**12}, "latency_ms"),
    ({"role": "user", "content": "x", "model": "nope"}, "model"),
    ({"role": "user", "content": "x", "usage": _usage()}, "usage"),
    ({"role": "tool", "content": "x", "usage": _usage()}, "usage"),
    ({"role": "assistant", "content": "x", "usage": "lots"}, "usage"),
    (
        {"role": "assistant", "content": "x", "usage": {"provider": "openai"}},
        ["usage.model", "usage.input_tokens", "usage.output_tokens", "usage.request_id"],
    ),
    ({"role": "assistant", "content": "x", "usage": [1]}, "usage"),
    ({"role": "assistant", "content": "x", "usage": _usage(request_id=None)}, "usage.request_id"),
    ({"role": "assistant", "content": "x", "usage": _usage(request_id="")}, "usage.request_id"),
    (
        {"role": "assistant", "content": "x", "usage": _usage(request_id="r" * 101)},
        "usage.request_id",
    ),
    ({"role": "assistant", "content": "x", "usage": _usage(input_tokens=-5)}, "usage.input_tokens"),
    (
        {"role": "assistant", "content": "x", "usage": _usage(output_tokens=10**12)},
        "usage.output_tokens",
    ),
    (
        {"role": "assistant", "content": "x", "usage": _usage(input_tokens="many")},
        "usage.input_tokens",
    ),
    (
        {"role": "assistant", "content": "x", "usage": _usage(cached_input_tokens=1_001)},
        "usage.cached_input_tokens",
    ),
    (
        {"role": "assistant", "content": "x", "usage": _usage(reasoning_tokens=201)},
        "usage.reasoning_tokens",
    ),
    ({"role": "assistant", "content": "x", "usage": _usage(cost="0")}, "usage.cost"),
    (
        {"role": "assistant", "content": "x", "usage": _usage(reservation_id=0)},
        "usage.reservation_id",
    ),
    ({"role": "assistant", "content": "x", "usage": _usage(status="fine")}, "usage.status"),
    ({"role": "assistant", "content": "x", "usage": _usage(latency_ms=-1)}, "usage.latency_ms"),
    (
        {"role": "assistant", "content": "x", "usage": _usage(reserved_tokens=1)},
        "usage.reserved_tokens",
    ),
    ({"role": "assistant", "content": "x", "usage": _usage(provider="acme")}, "usage.model"),
    ({"role": "assistant", "content": "x", "usage": _usage(provider="anthropic")}, "usage.model"),
    ({"role": "assistant", "content": "x", "usage": _usage(model="gpt-4.1")}, "usage.model"),
    (
        {"role": "assistant", "content": "x", "model": "gpt-5", "usage": _usage()},
        "model",
    ),
]


@pytest.mark.parametrize("body, field", MESSAGE_CASES)
def test_a_bad_message_is_refused_naming_the_field(api, me, body, field):
    AIModel.objects.filter(name="gpt-4.1").update(is_active=False)
    sid = api.post("/sessions").json()["id"]
    before = _written()
    quota = UserQuota.objects.get(user=me)
    error = _error(api.post(f"/sessions/{sid}/messages", body), 422, "validation_error")
    assert _fields(error) == (field if isinstance(field, list) else [field]), error
    assert _written() == before
    assert UserQuota.objects.get(user=me).tokens_used == quota.tokens_used


TOOL_CALL_CASES = [
    ({}, "tool_name"),
    ({"tool_name": ""}, "tool_name"),
    ({"tool_name": "x" * 101}, "tool_name"),
    ({"tool_name": "x", "arguments": [1]}, "arguments"),
    ({"tool_name": "x", "arguments": DEEP_JSON}, "arguments"),
    ({"tool_name": "x", "arguments": {"k": "x" * 70_000}}, "arguments"),
    ({"tool_name": "x", "status": "success"}, "status"),
    ({"tool_name": "x", "message_id": 0}, "message_id"),
    ({"tool_name": "x", "message_id": 2**64}, "message_id"),
    ({"tool_name": "x", "message_id": "one"}, "message_id"),
]


@pytest.mark.parametrize("body, field", TOOL_CALL_CASES)
def test_a_bad_tool_call_is_refused_naming_the_field(api, body, field):
    sid = api.post("/sessions").json()["id"]
    before = _written()
    error = _error(api.post(f"/sessions/{sid}/tool-calls", body), 422, "validation_error")
    assert _fields(error) == [field], error
    assert _written() == before


TOOL_RESULT_CASES = [
    ({}, "status"),
    ({"status": "pending"}, "status"),
    ({"status": "done"}, "status"),
    ({"status": "error", "error": "x" * 10_001}, "error"),
    ({"status": "error", "error": 3}, "error"),
    ({"status": "success", "result": {"k": "x" * 300_000}}, "result"),
    ({"status": "success", "result": ["\x00"]}, "result"),
    ({"status": "success", "result": DEEP_JSON}, "result"),
]


@pytest.mark.parametrize("body, field", TOOL_RESULT_CASES)
def test_a_bad_tool_result_is_refused_naming_the_field(api, body, field):
    sid = api.post("/sessions").json()["id"]
    cid = api.post(f"/sessions/{sid}/tool-calls", {"tool_name": "x"}).json()["id"]
    before = _written()
    error = _error(api.patch(f"/sessions/{sid}/tool-calls/{cid}", body), 422, "validation_error")
    assert _fields(error) == [field], error
    assert _written() == before


def test_a_result_that_is_not_finite_is_refused(api):
    sid = api.post("/sessions").json()["id"]
    cid = api.post(f"/sessions/{sid}/tool-calls", {"tool_name": "x"}).json()["id"]
    path = f"/sessions/{sid}/tool-calls/{cid}"
    for raw in ('{"status": "success", "result": NaN}', '{"status": "success", "result": [1e999]}'):
        error = _error(api.patch(path, raw=raw), 422, "validation_error")
        assert _fields(error) == ["result"]
    assert AgentToolCall.objects.get(pk=cid).status == "pending"


FEEDBACK_CASES = [
    ({}, "rating"),
    ({"rating": 0}, "rating"),
    ({"rating": 6}, "rating"),
    ({"rating": "good"}, "rating"),
    ({"rating": 3.5}, "rating"),
    ({"rating": 3, "comment": "x" * 5_001}, "comment"),
    ({"rating": 3, "category": "x" * 51}, "category"),
    ({"rating": 3, "message_id": -4}, "message_id"),
]


@pytest.mark.parametrize("body, field", FEEDBACK_CASES)
def test_bad_feedback_is_refused_naming_the_field(api, body, field):
    sid = api.post("/sessions").json()["id"]
    before = _written()
    error = _error(api.post(f"/sessions/{sid}/feedback", body), 422, "validation_error")
    assert _fields(error) == [field], error
    assert _written() == before


def test_feedback_rates_assistant_messages_only(api):
    sid = api.post("/sessions").json()["id"]
    mid = api.post(f"/sessions/{sid}/messages", {"role": "user", "content": "q"}).json()["id"]
    before = _written()
    error = _error(
        api.post(f"/sessions/{sid}/feedback", {"rating": 1, "message_id": mid}),
        422,
        "validation_error",
    )
    assert error["message"] == services.FEEDBACK_NOT_ASSISTANT and _fields(error) == ["message_id"]
    assert _written() == before


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"active": "maybe"}, "active"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "MjAyNi0wMS0wMVQwMDowMDowMHwx"}, "cursor"),  # naive time: not ours
        ({"cursor": "x" * 201}, "cursor"),
    ],
)
def test_bad_list_parameters_are_refused_naming_the_field(api, params, field):
    error = _error(api.get("/sessions", **params), 422, "validation_error")
    assert _fields(error) == [field], error


@pytest.mark.parametrize("raw", ["{", "[]", "null", '"text"', "\x00"])
def test_a_body_that_is_not_a_json_object_is_a_client_error(api, raw):
    before = _written()
    response = api.post("/sessions", raw=raw)
    assert 400 <= response.status_code < 500, response.content
    assert "error" in response.json()
    assert _written() == before


# --- lists, pages, query counts -------------------------------------------------------------


def _sessions_at(user, minutes_ago: list[int], **fields) -> list[AgentSession]:
    """Sessions whose last activity was ``minutes_ago`` (set as the table owner)."""
    now = timezone.now()
    made = []
    for minutes in minutes_ago:
        session = AgentSessionFactory(user=user, **fields)
        at = now - timedelta(minutes=minutes)
        AgentSession.objects.filter(pk=session.pk).update(started_at=at, last_activity_at=at)
        made.append(session)
    return made


def test_the_list_is_newest_activity_first_in_keyset_pages(api, me, theirs):
    # 3 and 4 share a moment: the newer id comes first, and the page break falls between them.
    made = _sessions_at(me, [50, 10, 30, 20, 20, 40, 5])
    expected = [made[i].pk for i in (6, 1, 4, 3, 2, 5, 0)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.get("/sessions", **params)
        assert page.status_code == 200, page.content
        body = page.json()
        assert len(body["items"]) <= 3
        seen += [s["id"] for s in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and pages == 3


def test_a_new_message_moves_its_session_to_the_front(api, me):
    old, new = _sessions_at(me, [60, 1])
    assert [s["id"] for s in api.get("/sessions").json()["items"]] == [new.pk, old.pk]
    api.post(f"/sessions/{old.pk}/messages", {"role": "user", "content": "back"})
    assert [s["id"] for s in api.get("/sessions").json()["items"]] == [old.pk, new.pk]


def test_the_list_filters_active_or_ended_sessions(api, me):
    active = _sessions_at(me, [3, 2])
    ended = _sessions_at(me, [1])
    api.post(f"/sessions/{ended[0].pk}/end")
    ids = lambda **params: [s["id"] for s in api.get("/sessions", **params).json()["items"]]  # noqa: E731
    assert ids(active="true") == [active[1].pk, active[0].pk]
    assert ids(active="false") == [ended[0].pk]
    assert len(ids()) == 3


def test_the_default_page_holds_twenty(api, me):
    _sessions_at(me, list(range(25)))
    body = api.get("/sessions").json()
    assert len(body["items"]) == 20 and body["next_cursor"]
    assert len(api.get("/sessions", limit=100).json()["items"]) == 25


def _queries(caller: Caller, path: str, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = caller.get(path, **params)
    assert response.status_code == 200, response.content
    return len(queries)


def _baseline(caller: Caller) -> int:
    """The queries of any authenticated call (token, identity): those of GET /me."""
    caller.client.get("/api/v1/me", **caller.headers)  # warm the per-user caches (plan limits)
    with CaptureQueriesContext(connection) as queries:
        assert caller.client.get("/api/v1/me", **caller.headers).status_code == 200
    return len(queries)


def test_the_list_is_one_query_whatever_its_length(api, me, django_assert_max_num_queries):
    baseline = _baseline(api)
    _sessions_at(me, [1], model=catalog_model())
    assert _queries(api, "/sessions", limit=100) == baseline + 1
    _sessions_at(me, list(range(2, 80)), model=catalog_model())
    with django_assert_max_num_queries(baseline + 1):
        body = api.get("/sessions", limit=100).json()
    assert len(body["items"]) == 79 and body["items"][0]["model"] == "gpt-5-mini"
    cursor = api.get("/sessions", limit=10).json()["next_cursor"]
    with django_assert_max_num_queries(baseline + 1):
        assert len(api.get("/sessions", limit=10, cursor=cursor).json()["items"]) == 10


def test_the_detail_is_five_queries_whatever_the_session_holds(
    api, me, django_assert_max_num_queries
):
    baseline = _baseline(api)
    sid = api.post("/sessions").json()["id"]
    api.post(f"/sessions/{sid}/messages", {"role": "user", "content": "q"})
    # session, messages (with model names and usage ids), tool calls, feedback, statistics
    assert _queries(api, f"/sessions/{sid}") == baseline + 5
    for n in range(20):
        mid = api.post(
            f"/sessions/{sid}/messages",
            {"role": "assistant", "content": "a", "usage": _usage(request_id=f"r{n}")},
        ).json()["id"]
        api.post(f"/sessions/{sid}/tool-calls", {"tool_name": "t", "message_id": mid})
        api.post(f"/sessions/{sid}/feedback", {"rating": 4, "message_id": mid})
    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW agent_session_stats")
    with django_assert_max_num_queries(baseline + 5):
        body = api.get(f"/sessions/{sid}").json()
    assert len(body["messages"]) == 21 and len(body["tool_calls"]) == 20
    assert len(body["feedback"]) == 20 and body["stats"]["assistant_messages"] == 20
    assert all(m["usage_id"] for m in body["messages"][1:])
    assert {m["model"] for m in body["messages"][1:]} == {"gpt-5-mini"}


def test_the_detail_holds_the_latest_messages_and_says_so(api, me, monkeypatch):
    from agents import selectors

    monkeypatch.setattr(selectors, "DETAIL_LIMIT", 3)
    sid = api.post("/sessions").json()["id"]
    for n in range(5):
        api.post(f"/sessions/{sid}/messages", {"role": "user", "content": str(n)})
    body = api.get(f"/sessions/{sid}").json()
    assert [m["position"] for m in body["messages"]] == [3, 4, 5]
    assert body["messages_truncated"] is True and body["session"]["message_count"] == 5
    assert body["stats"] is None  # not refreshed since


def test_a_deactivated_model_still_shows_the_session(api, me):
    sid = api.post("/sessions", {"model": "gpt-4.1"}).json()["id"]
    AIModel.objects.filter(name="gpt-4.1").update(is_active=False)
    detail = api.get(f"/sessions/{sid}")
    assert detail.status_code == 200 and detail.json()["session"]["model"] is None
    assert api.get("/sessions").json()["items"][0]["model"] is None


def test_the_openapi_schema_documents_the_agents_endpoints(client):
    schema = client.get("/api/v1/openapi.json").json()
    paths = {path for path in schema["paths"] if path.startswith("/api/v1/agents/")}
    assert paths == {
        "/api/v1/agents/sessions",
        "/api/v1/agents/sessions/{session_id}",
        "/api/v1/agents/sessions/{session_id}/messages",
        "/api/v1/agents/sessions/{session_id}/tool-calls",
        "/api/v1/agents/sessions/{session_id}/tool-calls/{call_id}",
        "/api/v1/agents/sessions/{session_id}/feedback",
        "/api/v1/agents/sessions/{session_id}/end",
    }


# --- concurrency ------------------------------------------------------------------------------


def _in_threads(count: int, work) -> list[Exception]:
    barrier = threading.Barrier(count)
    errors: list[Exception] = []

    def run(i: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            work(i)
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_reply_with_usage_and_a_usage_record_for_its_session_do_not_deadlock():
    """quota -> session in both flows (agents/sql/0005_quota_lock.sql)."""
    user = _account()
    session = AgentSessionFactory(user=user)
    model = catalog_model()
    rounds = 6

    def work(i: int) -> None:
        for n in range(rounds):
            with transaction.atomic(), rls.user_context(user, may_record=True):
                if i % 2:
                    services.message_add(
                        user_id=user.pk,
                        session_id=session.pk,
                        role="assistant",
                        content="a",
                        usage=services.MessageUsage(
                            **_usage(request_id=f"m{i}-{n}", input_tokens=10, output_tokens=1)
                        ),
                    )
                else:
                    usage_services.usage_record(
                        user_id=user.pk,
                        provider_id=model.provider_id,
                        model_id=model.pk,
                        input_tokens=10,
                        output_tokens=1,
                        request_id=f"u{i}-{n}",
                        agent_session_id=session.pk,
                    )

    assert _in_threads(6, work) == []
    session.refresh_from_db()
    assert session.message_count == 3 * rounds
    assert session.total_tokens == 6 * rounds * 11
    assert UserQuota.objects.get(user=user).tokens_used == 6 * rounds * 11


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_retries_of_one_reply_record_it_once():
    user = _account()
    session = AgentSessionFactory(user=user)
    results: list[tuple[int, bool]] = []

    def work(i: int) -> None:
        with transaction.atomic(), rls.user_context(user, may_record=True):
            message, created = services.message_add(
                user_id=user.pk,
                session_id=session.pk,
                role="assistant",
                content="a",
                usage=services.MessageUsage(**_usage(request_id="same")),
            )
        results.append((message.pk, created))

    assert _in_threads(6, work) == []
    assert len({pk for pk, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    assert AIUsageRequest.objects.filter(agent_session=session).count() == 1
    session.refresh_from_db()
    assert (session.message_count, session.total_tokens) == (1, 1_200)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_first_feedback_on_one_message_leaves_one_row():
    user = _account()
    session = AgentSessionFactory(user=user)
    message = AgentMessageFactory(session=session, role="assistant", position=1)

    def work(i: int) -> None:
        with transaction.atomic(), rls.user_context(user):
            services.feedback_give(
                user_id=user.pk, session_id=session.pk, rating=1 + i % 5, message_id=message.pk
            )

    assert _in_threads(6, work) == []
    assert AgentFeedback.objects.filter(message=message).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ending_races_new_messages_cleanly():
    """Each message either lands before the end or is refused; none fails otherwise."""
    user = _account()
    session = AgentSessionFactory(user=user)
    refused: list[int] = []

    def work(i: int) -> None:
        with transaction.atomic(), rls.user_context(user):
            if i == 0:
                services.session_end(user_id=user.pk, session_id=session.pk)
                return
            try:
                services.message_add(
                    user_id=user.pk, session_id=session.pk, role="user", content=str(i)
                )
            except services.AgentError as error:
                assert error.message == services.SESSION_ENDED
                refused.append(i)

    assert _in_threads(8, work) == []
    session.refresh_from_db()
    assert not session.is_active and session.ended_at is not None
    assert AgentMessage.objects.filter(session=session).count() + len(refused) == 7
    assert session.message_count == 7 - len(refused)
