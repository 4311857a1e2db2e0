"""The staff dashboard's agent pages: /dashboard/agents/ and a session's page (the user's own
transcript shaping, agents/transcripts.py, with the usage rows behind each message)."""

import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse

from accounts.models import User
from agents import transcripts
from agents.models import AgentFeedback, AgentSession, AgentToolCall
from usage import services as usage_services
from witchcraft.platform import rls
from witchcraft.platform.money import money_text
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

LIST = reverse("dashboard:agents")


@pytest.fixture
def staff(client):
    member = User.objects.create_user(
        email="staff@example.com", password="correct horse battery", is_staff=True
    )
    client.force_login(member)
    return client


def _refresh_stats():
    with connection.cursor() as cursor:
        cursor.execute("SELECT public.refresh_agent_session_stats()")


def _session(**fields):
    return factories.AgentSessionFactory(**fields)


def _titles(response) -> list[str]:
    return [row.session.title for row in response.context["listing"].rows]


def test_anonymous_visitors_are_sent_to_sign_in(client):
    session = _session()
    for url in (LIST, reverse("dashboard:agent_session", args=[session.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert "next=" in response["Location"]


def test_a_signed_in_member_gets_a_404(client):
    client.force_login(factories.UserFactory())
    session = _session()
    assert client.get(LIST).status_code == 404
    assert client.get(reverse("dashboard:agent_session", args=[session.pk])).status_code == 404


def test_empty_state(staff):
    response = staff.get(LIST)
    assert response.status_code == 200
    assert b"No agent sessions yet" in response.content
    assert b'id="sessions"' not in response.content


def test_filters_change_the_rows(staff, catalog_model):
    alice = factories.UserFactory(email="alice@example.com")
    bob = factories.UserFactory(email="bob@example.com")
    liked = _session(user=alice, title="liked", model=catalog_model)
    _session(user=alice, title="ended", is_active=False)
    _session(user=bob, title="bobs")
    AgentFeedback.objects.create(session=liked, user=alice, rating=5)
    _refresh_stats()

    assert sorted(_titles(staff.get(LIST))) == ["bobs", "ended", "liked"]
    assert sorted(_titles(staff.get(LIST, {"email": "ALICE@example.com "}))) == ["ended", "liked"]
    assert _titles(staff.get(LIST, {"active": "no"})) == ["ended"]
    assert _titles(staff.get(LIST, {"model": catalog_model.pk})) == ["liked"]
    assert _titles(staff.get(LIST, {"rating": "4.5"})) == ["liked"]
    assert b"No user has the email" in staff.get(LIST, {"email": "nobody@example.com"}).content
    response = staff.get(LIST, {"email": "bob@example.com", "active": "no"})
    assert b"No session matches these filters" in response.content
    # Bad values are ignored rather than failing.
    assert staff.get(LIST, {"rating": "NaN", "model": "x", "page": "-3"}).status_code == 200


def test_newest_activity_first_and_paginated(staff):
    owner = factories.UserFactory()
    for i in range(51):
        _session(user=owner, title=f"s{i}")
    stale = _session(user=owner, title="stale")
    AgentSession.objects.filter(pk=stale.pk).update(
        started_at=F("started_at") - timedelta(days=2),
        last_activity_at=F("last_activity_at") - timedelta(days=1),
    )
    first = staff.get(LIST)
    assert len(first.context["listing"].rows) == 50
    assert first.context["listing"].has_next
    assert _titles(first)[:2] == ["s50", "s49"]  # same activity: newest session first
    second = staff.get(LIST, {"page": 2})
    assert _titles(second) == ["s0", "stale"]
    assert not second.context["listing"].has_next
    assert set(_titles(first)).isdisjoint(_titles(second))


@pytest.mark.parametrize("count", [1, 60])
def test_list_query_count_is_bounded(staff, django_assert_max_num_queries, count, catalog_model):
    for _ in range(count):
        session = _session(model=catalog_model)
        AgentFeedback.objects.create(session=session, user=session.user, rating=3)
    _refresh_stats()
    with django_assert_max_num_queries(20):
        response = staff.get(LIST, {"rating": "1"})
    assert len(response.context["listing"].rows) == min(count, 50)


def _record_usage(message, model, *, request_id, status="success", **fields) -> int:
    with transaction.atomic(), rls.service_context():
        return usage_services.usage_record(
            user_id=message.user_id,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=message.input_tokens,
            output_tokens=message.output_tokens,
            request_id=request_id,
            status=status,
            agent_session_id=message.session_id,
            agent_message_id=message.pk,
            **fields,
        )


def _page(staff, session, **query):
    response = staff.get(reverse("dashboard:agent_session", args=[session.pk]), query)
    assert response.status_code == 200
    return response


def _entry_html(html: str, message) -> str:
    match = re.search(
        rf'<li value="\d+" id="message-{message.pk}".*?(?=<li value=|</ol>)', html, re.S
    )
    assert match, f"message {message.pk} not on the page"
    return match.group(0)


def test_staff_see_what_the_user_sees_and_more(staff, catalog_model):
    owner = factories.UserFactory(email="ada@example.com")
    session = _session(user=owner, title="Plan a trip", model=catalog_model)
    ask = factories.AgentMessageFactory(session=session, position=1, content="Where in May?")
    answer = factories.AgentMessageFactory(
        session=session,
        position=2,
        role="assistant",
        content="Lisbon",
        model=catalog_model,
        input_tokens=1200,
        output_tokens=345,
        latency_ms=1875,
    )
    failed = factories.AgentMessageFactory(
        session=session, position=3, role="assistant", content="(failed)", model=catalog_model
    )
    AgentToolCall.objects.create(
        session=session,
        message=answer,
        user=owner,
        tool_name="weather",
        arguments={"city": "Lisbon"},
        result={"celsius": 24},
        status="success",
        duration_ms=42,
    )
    AgentToolCall.objects.create(
        session=session, user=owner, tool_name="cleanup", arguments={}, status="error", error="gone"
    )
    AgentFeedback.objects.create(session=session, message=answer, user=owner, rating=5)
    AgentFeedback.objects.create(session=session, user=owner, rating=4, comment="good trip")
    usage_id = _record_usage(
        answer, catalog_model, request_id="req-answer-1", time_to_first_token_ms=210
    )
    _record_usage(
        failed,
        catalog_model,
        request_id="req-failed-1",
        status="error",
        error_code="rate_limited",
        error_message="slow down",
    )
    session.refresh_from_db()

    response = _page(staff, session)
    html = response.content.decode()
    # The user's email, linked to their 360° page; the session's totals.
    assert f'href="{reverse("dashboard:user", args=[owner.pk])}"' in html
    assert "ada@example.com" in html
    assert f'id="session-cost">{money_text(session.total_cost)}<' in html

    # The same shaping as the user's own page: the tool call under the message that made it,
    # with its arguments and result; the feedback; the tokens.
    entry = response.context["t"].entries[1]
    assert entry.message == answer
    assert [c.call.tool_name for c in entry.tool_calls] == ["weather"]
    assert entry.feedback.rating == 5
    with transaction.atomic(), rls.user_context(owner):
        mine = transcripts.transcript_get(user_id=owner.pk, session_id=session.pk)
    assert [e.message.pk for e in mine.entries] == [
        e.message.pk for e in response.context["t"].entries
    ]
    assert [[c.arguments for c in e.tool_calls] for e in mine.entries] == [
        [c.arguments for c in e.tool_calls] for e in response.context["t"].entries
    ]

    answer_html = _entry_html(html, answer)
    assert "weather" in answer_html and "&quot;city&quot;: &quot;Lisbon&quot;" in answer_html
    assert "&quot;celsius&quot;: 24" in answer_html
    assert "1,200 in / 345 out tokens" in answer_html
    assert "1,875 ms" in answer_html
    assert "5 of 5" in answer_html
    # And more: model and provider, the usage row behind the message linked to the request,
    # its cost, its time to first token.
    assert f"{catalog_model.name} ({catalog_model.provider.name})" in answer_html
    usage_link = reverse("admin:usage_aiusagerequest_change", args=[usage_id])
    assert f'href="{usage_link}"' in answer_html and "req-answer-1" in answer_html
    cost = response.context["t"].entries[1].usage_cost
    assert cost > 0 and money_text(cost) in answer_html
    assert "(first token 210 ms)" in answer_html
    failed_html = _entry_html(html, failed)
    assert "rate_limited" in failed_html and "slow down" in failed_html
    assert 'class="flag">error' in failed_html
    assert "usage-rows" not in _entry_html(html, ask)

    # A call tied to no message, and the rating of the whole session.
    assert 'id="other-tool-calls"' in html and "cleanup" in html and "gone" in html
    assert "rating of the whole session: 4/5" in html and "good trip" in html


def test_the_session_page_shows_user_content_as_text(staff):
    session = _session(title="<b>title</b>")
    for position, content in [(2, "second"), (1, "<script>alert(1)</script>\nline two")]:
        factories.AgentMessageFactory(session=session, position=position, content=content)
    first = session.messages.get(position=1)
    AgentToolCall.objects.create(
        session=session,
        message=first,
        user=session.user,
        tool_name="<script>tool</script>",
        arguments={"q": "<script>x</script>"},
        result={"hits": ["<img src=x onerror=alert(1)>"]},
        status="error",
        error="<script>err</script>",
        duration_ms=42,
    )
    AgentFeedback.objects.create(
        session=session, message=first, user=session.user, rating=2, comment="<i>meh</i>"
    )
    _refresh_stats()

    html = _page(staff, session).content.decode()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>line two" in html
    assert html.index("&lt;script&gt;alert(1)") < html.index("second")
    assert "&quot;q&quot;: &quot;&lt;script&gt;x&lt;/script&gt;&quot;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;tool&lt;/script&gt;" in html
    assert "&lt;script&gt;err&lt;/script&gt;" in html
    assert "&lt;b&gt;title&lt;/b&gt;" in html
    assert "&lt;i&gt;meh&lt;/i&gt;" in html
    assert "42 ms" in html
    assert 'id="stats"' in html and "Refreshed at" in html


def test_the_session_page_of_an_empty_session_and_of_no_session(staff):
    session = _session()
    html = _page(staff, session).content.decode()
    assert "No messages in this session yet" in html
    assert "No stats yet" in html
    assert 'id="other-tool-calls"' not in html
    assert staff.get(reverse("dashboard:agent_session", args=[session.pk + 999])).status_code == 404
    # A page number it refuses is the first page, never an error.
    for bad in ("-3", "x", "10000000000", "1e3"):
        assert _page(staff, session, page=bad).context["t"].page.page == 1


def _long_session(count, model):
    session = _session(model=model)
    messages = factories.AgentMessageFactory.create_batch(count, session=session, model=model)
    AgentToolCall.objects.bulk_create(
        AgentToolCall(
            session=session, message=m, user=session.user, tool_name="t", arguments={"i": i}
        )
        for i, m in enumerate(messages)
    )
    AgentFeedback.objects.bulk_create(
        AgentFeedback(session=session, message=m, user=session.user, rating=3) for m in messages
    )
    for i, message in enumerate(messages[:: max(1, count // 20)]):
        _record_usage(message, model, request_id=f"long-{i}")
    _refresh_stats()
    return session, messages


@pytest.mark.parametrize("count", [2, 410])
def test_session_page_query_count_is_bounded(
    staff, django_assert_max_num_queries, count, catalog_model
):
    session, messages = _long_session(count, catalog_model)
    with django_assert_max_num_queries(16):
        first = _page(staff, session)
    t = first.context["t"]
    assert len(t.entries) == min(count, 200)
    assert t.page.has_next == (count > 200)
    assert all(len(entry.tool_calls) == 1 and entry.feedback for entry in t.entries)
    if count > 200:
        with django_assert_max_num_queries(16):
            second = _page(staff, session, page=2)
        shown = [e.message.pk for e in second.context["t"].entries]
        assert shown == [m.pk for m in messages[200:400]]
        assert second.context["t"].page.has_next
        third = _page(staff, session, page=3).context["t"]
        assert [e.message.pk for e in third.entries] == [m.pk for m in messages[400:]]
        assert not third.page.has_next
        html = second.content.decode()
        assert 'href="?page=1"' in html and 'href="?page=3"' in html
