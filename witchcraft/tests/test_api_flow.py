"""The Witchcraft client app's whole flow over the API, as the README's walk-through tells it, in
the default deployment (Witchcraft pays for the AI calls): register, confirm, sign in; the
backend that calls the providers reserves and records with its service credential, naming the
user; the user's own token reads the quota and the summary, runs an agent session with tool
calls and feedback, and may not record; a second user sees none of it."""

import re

import pytest
from django.core import mail

from billing.models import SubscriptionTier, UserQuota
from usage.models import AIUsageRequest
from witchcraft.testing.factories import service_credential

pytestmark = pytest.mark.django_db
PASSWORD = "the client app's passphrase"


class Api:
    def __init__(self, client, token=None, *, acting_for=None):
        self.client, self.token, self.acting_for = client, token, acting_for

    def _auth(self):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
        if self.acting_for is not None:
            headers["HTTP_WITCHCRAFT_USER"] = str(self.acting_for)
        return headers

    def get(self, path):
        return self.client.get(f"/api/v1{path}", **self._auth())

    def post(self, path, body=None):
        return self.client.post(
            f"/api/v1{path}", body or {}, content_type="application/json", **self._auth()
        )

    def patch(self, path, body):
        return self.client.patch(
            f"/api/v1{path}", body, content_type="application/json", **self._auth()
        )


def _signed_up(client, email) -> Api:
    api = Api(client)
    assert api.post("/auth/register", {"email": email, "password": PASSWORD}).status_code == 202
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    assert client.get("/" + link.split("/", 3)[3]).status_code == 302  # confirm the address
    login = api.post("/auth/login", {"email": email, "password": PASSWORD})
    assert login.status_code == 201, login.content
    return Api(client, login.json()["token"])


def test_the_client_flow_end_to_end(client):
    # The free plan allows 10 calls a minute; this flow makes about 25 in one go.
    SubscriptionTier.objects.filter(slug="free").update(requests_per_minute=100)
    api = _signed_up(client, "flow@example.com")
    me = api.get("/me").json()
    assert me["email_verified"] is True
    backend = Api(client, service_credential().raw, acting_for=me["id"])

    models = Api(client).get("/catalog/models").json()
    assert any(m["name"] == "gpt-5-mini" for m in models)

    quota = api.get("/quota").json()
    # The user's own token may not reserve nor record here; the backend's credential may.
    refused = api.post("/quota/consume", {"tokens": 2000, "cost": "0.01"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    reservation = backend.post("/quota/consume", {"tokens": 2000, "cost": "0.01"})
    assert reservation.status_code == 200, reservation.content
    assert reservation.json()["allowed"] is True
    assert api.get("/quota").json()["tokens"]["used"] == 2000

    record = {
        "request_id": "flow-1",
        "provider": "openai",
        "model": "gpt-5-mini",
        "input_tokens": 1200,
        "output_tokens": 400,
        "latency_ms": 850,
        "reservation_id": reservation.json()["reservation"]["id"],
    }
    assert api.post("/usage", record).status_code == 403
    first = backend.post("/usage", record)
    assert first.status_code == 201, first.content
    retry = backend.post("/usage", record)
    assert retry.status_code == 200
    assert retry.json()["id"] == first.json()["id"] and retry.json()["duplicate"] is True
    assert AIUsageRequest.objects.filter(request_id="flow-1").count() == 1
    changed = backend.post("/usage", {**record, "output_tokens": 999})
    assert changed.status_code == 409

    after = api.get("/quota").json()
    assert after != quota
    assert after["tokens"]["used"] == 1600  # the actual amount; the 2,000 held were settled
    summary = api.get("/usage/summary?days=7").json()
    assert summary

    session = api.post("/agents/sessions", {"title": "Refactor", "model": "gpt-5-mini"})
    assert session.status_code == 201, session.content
    sid = session.json()["id"]
    assert (
        api.post(
            f"/agents/sessions/{sid}/messages", {"role": "user", "content": "Tidy this up"}
        ).status_code
        == 201
    )
    # The assistant's reply carries the usage of the call behind it: the backend posts it.
    answer = backend.post(
        f"/agents/sessions/{sid}/messages",
        {
            "role": "assistant",
            "content": "Done.",
            "usage": {
                "request_id": "flow-2",
                "provider": "openai",
                "model": "gpt-5-mini",
                "input_tokens": 900,
                "output_tokens": 300,
            },
        },
    )
    assert answer.status_code == 201, answer.content
    call = api.post(
        f"/agents/sessions/{sid}/tool-calls",
        {"tool_name": "grep", "arguments": {"pattern": "TODO"}},
    )
    assert call.status_code == 201, call.content
    done = api.patch(
        f"/agents/sessions/{sid}/tool-calls/{call.json()['id']}",
        {"status": "success", "result": {"matches": 3}},
    )
    assert done.status_code == 200, done.content
    feedback = api.post(
        f"/agents/sessions/{sid}/feedback", {"rating": 5, "message_id": answer.json()["id"]}
    )
    assert feedback.status_code == 201, feedback.content
    ended = api.post(f"/agents/sessions/{sid}/end")
    assert ended.status_code == 200 and ended.json()["is_active"] is False

    detail = api.get(f"/agents/sessions/{sid}").json()
    assert detail["session"]["message_count"] == 2
    assert detail["session"]["tool_call_count"] == 1
    assert detail["session"]["total_tokens"] == 1200
    assert len(detail["messages"]) == 2 and len(detail["feedback"]) == 1

    # Someone else sees none of it, and cannot touch it.
    other = _signed_up(client, "other@example.com")
    assert other.get(f"/agents/sessions/{sid}").status_code == 404
    assert (
        other.post(
            f"/agents/sessions/{sid}/messages", {"role": "user", "content": "hi"}
        ).status_code
        == 404
    )
    assert other.get("/agents/sessions").json()["items"] == []
    assert other.get("/usage/monthly").json() == []
    assert other.post("/usage", {**record, "agent_session_id": sid}).status_code == 403
    other_id = other.get("/me").json()["id"]
    for_other = Api(client, backend.token, acting_for=other_id)
    assert for_other.get(f"/agents/sessions/{sid}").status_code == 404
    assert for_other.post("/usage", {**record, "request_id": "x"}).status_code == 404
    assert UserQuota.objects.get(user_id=other_id).tokens_used == 0
    mine = api.get("/tokens").json()[0]["id"]
    assert other.client.delete(f"/api/v1/tokens/{mine}", **other._auth()).status_code == 404


@pytest.mark.parametrize("path", ["/api/docs", "/api/"])
def test_the_unversioned_docs_address_leads_to_the_docs(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == "/api/v1/docs"
