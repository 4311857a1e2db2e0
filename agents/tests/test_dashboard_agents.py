"""The staff dashboard's agent pages: /dashboard/agents/ and a session's page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.urls import reverse

from accounts.models import User
from agents.models import AgentFeedback, AgentSession, AgentToolCall
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


def test_the_session_page_shows_the_transcript_in_order_escaped(staff):
    session = _session(title="<b>title</b>")
    for position, content in [(2, "second"), (1, "<script>alert(1)</script>\nline two")]:
        factories.AgentMessageFactory(session=session, position=position, content=content)
    AgentToolCall.objects.create(
        session=session,
        user=session.user,
        tool_name="search",
        arguments={"q": "<script>x</script>"},
        result={"hits": ["<img src=x onerror=alert(1)>"]},
        status="success",
        duration_ms=42,
    )
    AgentFeedback.objects.create(session=session, user=session.user, rating=2, comment="<i>meh</i>")
    _refresh_stats()

    response = staff.get(reverse("dashboard:agent_session", args=[session.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>line two" in html
    assert html.index("&lt;script&gt;alert(1)") < html.index("second")
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&quot;q&quot;: &quot;&lt;script&gt;x&lt;/script&gt;&quot;" in html
    assert "&lt;b&gt;title&lt;/b&gt;" in html
    assert "&lt;i&gt;meh&lt;/i&gt;" in html
    assert "42 ms" in html
    assert 'id="stats"' in html and "Refreshed at" in html


def test_the_session_page_of_an_empty_session_and_of_no_session(staff):
    session = _session()
    html = staff.get(reverse("dashboard:agent_session", args=[session.pk])).content.decode()
    assert "No messages in this session yet" in html
    assert "No tool calls" in html and "No feedback on this session" in html
    assert "No stats yet" in html
    assert staff.get(reverse("dashboard:agent_session", args=[session.pk + 999])).status_code == 404


@pytest.mark.parametrize("count", [1, 210])
def test_session_page_query_count_is_bounded(staff, django_assert_max_num_queries, count):
    session = _session()
    factories.AgentMessageFactory.create_batch(count, session=session)
    AgentToolCall.objects.bulk_create(
        AgentToolCall(session=session, user=session.user, tool_name="t", arguments={"i": i})
        for i in range(count)
    )
    url = reverse("dashboard:agent_session", args=[session.pk])
    with django_assert_max_num_queries(20):
        response = staff.get(url)
    shown = len(response.context["t"].messages)
    assert shown == min(count, 200)
    assert response.context["t"].has_next == (count > 200)
    if count > 200:
        assert len(staff.get(url, {"page": 2}).context["t"].messages) == count - 200
