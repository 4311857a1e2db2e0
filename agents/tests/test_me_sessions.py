"""The user's agent pages: /me/sessions/, a session's transcript, feedback on a message.

Through the Django test client, so every request runs in its user's row-level-security
context (witchcraft/platform/rls.py), on the real database.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import UserProfile
from agents import forms, selectors, services, views
from agents.models import AgentFeedback, AgentSession, MessageRole
from witchcraft.platform import rls
from witchcraft.testing.factories import AgentSessionFactory, UserFactory, catalog_model

pytestmark = pytest.mark.django_db

LIST = reverse("agents:me_sessions")


def _detail(session) -> str:
    return reverse("agents:me_session", args=[session.pk])


def _feedback_url(session_id: int, message_id: int) -> str:
    return reverse("agents:me_feedback", args=[session_id, message_id])


@pytest.fixture
def me(client):
    member = UserFactory(email="me@example.com")
    client.force_login(member)
    return member


@pytest.fixture
def them():
    return UserFactory(email="them@example.com")


def _sessions_at(user, minutes_ago: list[int], **fields) -> list[AgentSession]:
    """Sessions of ``user`` whose start and last activity were that many minutes ago."""
    now = timezone.now()
    made = []
    for minutes in minutes_ago:
        session = AgentSessionFactory(user=user, **fields)
        at = now - timedelta(minutes=minutes)
        AgentSession.objects.filter(pk=session.pk).update(started_at=at, last_activity_at=at)
        made.append(session)
    return made


def _say(session, role: str, content: str, **fields):
    """A message added the way the API adds it (numbered and counted by the database)."""
    message, _ = services.message_add(
        user_id=session.user_id, session_id=session.pk, role=role, content=content, **fields
    )
    return message


def _titles(response) -> list[str]:
    return [session.title for session in response.context["page"].items]


def _conversation(user):
    """A session of ``user``: a question, an answer that ran a tool, a second answer."""
    session = AgentSessionFactory(user=user, title="Refactor the parser", model=catalog_model())
    question = _say(session, MessageRole.USER, "How do I split this function?")
    answer = _say(session, MessageRole.ASSISTANT, "Let me look at the file.", model="gpt-5-mini")
    call = services.tool_call_start(
        user_id=user.pk,
        session_id=session.pk,
        tool_name="read_file",
        arguments={"path": "parser.py"},
        message_id=answer.pk,
    )
    services.tool_call_finish(
        user_id=user.pk,
        session_id=session.pk,
        call_id=call.pk,
        status="success",
        result={"lines": 120},
    )
    second = _say(session, MessageRole.ASSISTANT, "Split it at the tokenizer.")
    return session, question, answer, second


# --- access ------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, them):
    session, _, answer, _ = _conversation(them)
    for response in (
        client.get(LIST),
        client.get(_detail(session)),
        client.post(_feedback_url(session.pk, answer.pk), {"thumb": "up"}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    assert not AgentFeedback.objects.exists()


def test_the_page_is_in_the_self_service_navigation(client, me):
    response = client.get(LIST)
    assert response.status_code == 200
    nav = {item["label"]: item for item in response.context["me_nav"]}
    assert nav["Sessions"]["url"] == LIST and nav["Sessions"]["current"]


# --- the list ----------------------------------------------------------------------------


def test_the_list_shows_my_sessions_newest_activity_first(client, me, them):
    older, newer = _sessions_at(me, [30, 5], model=catalog_model())
    _sessions_at(them, [1])
    AgentSession.objects.filter(pk=newer.pk).update(
        total_tokens=1500, input_tokens=1000, output_tokens=500, total_cost=Decimal("0.012345")
    )
    response = client.get(LIST)
    assert response.status_code == 200
    assert _titles(response) == [newer.title, older.title]
    body = response.content.decode()
    assert f'href="{_detail(newer)}"' in body and f'href="{_detail(older)}"' in body
    assert "gpt-5-mini" in body and "1500" in body and "$0.0123" in body


def test_the_list_renders_times_in_the_active_timezone(client, me):
    (session,) = _sessions_at(me, [0])
    moment = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    AgentSession.objects.filter(pk=session.pk).update(started_at=moment, last_activity_at=moment)
    # The zone of the user's profile (activated per request by accounts.timezones), or the one
    # active in this thread where that middleware is not installed: Tokyo either way.
    UserProfile.objects.update_or_create(user=me, defaults={"timezone": "Asia/Tokyo"})
    with timezone.override("Asia/Tokyo"):
        body = client.get(LIST).content.decode()
    assert "2026-01-15 21:00" in body and "2026-01-15 12:00" not in body


def test_the_list_says_when_there_is_nothing_yet(client, me):
    response = client.get(LIST)
    assert b"No agent sessions yet" in response.content
    assert b'id="sessions"' not in response.content


def test_search_by_title_ignores_case_and_status_filters(client, me, them):
    _sessions_at(me, [3], title="Parser refactor")
    _sessions_at(me, [2], title="Weekly report")
    ended = _sessions_at(me, [1], title="Old PARSER bug")[0]
    services.session_end(user_id=me.pk, session_id=ended.pk)
    _sessions_at(them, [0], title="their parser")

    assert _titles(client.get(LIST, {"q": "  parser "})) == [
        "Old PARSER bug",
        "Parser refactor",
    ]
    assert _titles(client.get(LIST, {"q": "parser", "status": "ended"})) == ["Old PARSER bug"]
    assert _titles(client.get(LIST, {"q": "parser", "status": "active"})) == ["Parser refactor"]
    assert _titles(client.get(LIST, {"status": "all"})) == [
        "Old PARSER bug",
        "Weekly report",
        "Parser refactor",
    ]
    # Wildcards of LIKE are matched literally.
    assert _titles(client.get(LIST, {"q": "%"})) == []
    response = client.get(LIST, {"q": "nothing like it"})
    assert response.status_code == 200 and b"No session matches these filters" in response.content


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"q": "x" * (forms.SEARCH_MAX_LENGTH + 1)}, "at most 200 characters"),
        ({"status": "paused"}, "Select a valid choice"),
        ({"cursor": "not-a-cursor"}, forms.BAD_PAGE_LINK),
        ({"cursor": "x" * (forms.CURSOR_MAX_LENGTH + 1)}, "at most 200 characters"),
        ({"q": "nul\x00byte"}, "Null characters are not allowed"),
    ],
)
def test_bad_filters_are_a_clear_error(client, me, params, error):
    _sessions_at(me, [1])
    response = client.get(LIST, params)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert b'id="sessions"' not in response.content


def test_the_list_pages_by_twenty_with_a_bounded_query_count(
    client, me, them, django_assert_max_num_queries
):
    _sessions_at(me, [1])
    client.get(LIST)  # warm what a first request loads once
    with CaptureQueriesContext(connection) as one_row:
        assert client.get(LIST).status_code == 200
    made = _sessions_at(me, list(range(2, 26)), model=catalog_model())
    _sessions_at(them, list(range(5)))
    with django_assert_max_num_queries(len(one_row)):
        first = client.get(LIST)
    page = first.context["page"]
    assert len(page.items) == selectors.PAGE_SIZE and page.next_cursor
    assert b'rel="next"' in first.content

    with django_assert_max_num_queries(len(one_row)):
        second = client.get(LIST, {"cursor": page.next_cursor})
    assert second.status_code == 200
    assert len(second.context["page"].items) == 25 - selectors.PAGE_SIZE
    assert second.context["page"].next_cursor is None
    seen = [s.pk for s in page.items] + [s.pk for s in second.context["page"].items]
    assert len(set(seen)) == 25 and made[-1].pk == seen[-1]
    assert b"Newest sessions" in second.content and b'rel="next"' not in second.content


def test_page_links_keep_the_filters(client, me):
    _sessions_at(me, list(range(25)), title="Parser")
    response = client.get(LIST, {"q": "parser", "status": "active"})
    cursor = response.context["page"].next_cursor
    assert f"?q=parser&amp;status=active&amp;cursor={cursor}" in response.content.decode()


# --- the transcript ----------------------------------------------------------------------


def test_the_transcript_shows_messages_tool_calls_and_feedback(client, me):
    session, question, answer, second = _conversation(me)
    services.feedback_give(
        user_id=me.pk, session_id=session.pk, message_id=answer.pk, rating=5, comment="Helpful"
    )
    services.feedback_give(user_id=me.pk, session_id=session.pk, rating=4, comment="Good")
    response = client.get(_detail(session))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index(question.content) < body.index(answer.content) < body.index(second.content)
    assert "read_file" in body and "success" in body
    assert "&quot;path&quot;: &quot;parser.py&quot;" in body and "&quot;lines&quot;: 120" in body
    # The tool call is shown under the message that made it.
    assert body.index(answer.content) < body.index("read_file") < body.index(second.content)
    assert "👍 thumbs up" in body and "“Helpful”" in body
    assert "Your rating of the whole session: 4/5 — “Good”" in body
    # A feedback form for each assistant message, none for the user's.
    assert f'action="{_feedback_url(session.pk, answer.pk)}"' in body
    assert f'action="{_feedback_url(session.pk, second.pk)}"' in body
    assert f'action="{_feedback_url(session.pk, question.pk)}"' not in body
    assert f'id="message-{answer.pk}"' in body
    assert b'id="truncated"' not in response.content


def test_the_transcript_escapes_what_the_agent_wrote(client, me):
    session = AgentSessionFactory(user=me, title="<b>bold</b>")
    _say(session, MessageRole.ASSISTANT, "<script>alert(1)</script>")
    body = client.get(_detail(session)).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert "<b>bold</b>" not in body


def test_the_transcript_says_when_earlier_messages_are_left_out(client, me, monkeypatch):
    monkeypatch.setattr(selectors, "DETAIL_LIMIT", 3)
    session = AgentSessionFactory(user=me)
    for n in range(5):
        _say(session, MessageRole.USER, f"message number {n}")
    response = client.get(_detail(session))
    body = response.content.decode()
    assert "message number 1" not in body and "message number 2" in body
    assert 'id="truncated"' in body and "only the latest 3 are shown" in body


def test_the_transcript_has_a_bounded_query_count(client, me, django_assert_max_num_queries):
    session = AgentSessionFactory(user=me)
    _say(session, MessageRole.ASSISTANT, "first")
    client.get(_detail(session))
    with CaptureQueriesContext(connection) as small:
        assert client.get(_detail(session)).status_code == 200
    for n in range(30):
        answer = _say(session, MessageRole.ASSISTANT, f"answer {n}", model="gpt-5-mini")
        call = services.tool_call_start(
            user_id=me.pk,
            session_id=session.pk,
            tool_name="search",
            arguments={},
            message_id=answer.pk,
        )
        services.tool_call_finish(
            user_id=me.pk, session_id=session.pk, call_id=call.pk, status="error", error="boom"
        )
        services.feedback_give(
            user_id=me.pk, session_id=session.pk, message_id=answer.pk, rating=1 + n % 5
        )
    with django_assert_max_num_queries(len(small)):
        response = client.get(_detail(session))
    assert response.content.decode().count("boom") == 30


def test_another_users_session_is_not_found(client, me, them):
    session, *_ = _conversation(them)
    assert client.get(_detail(session)).status_code == 404
    assert client.get(reverse("agents:me_session", args=[2**63 + 5])).status_code == 404


# --- feedback ----------------------------------------------------------------------------


def test_feedback_is_given_then_replaced(client, me):
    session, _, answer, _ = _conversation(me)
    url = _feedback_url(session.pk, answer.pk)

    response = client.post(url, {"thumb": "up", "comment": "Spot on"}, follow=True)
    assert response.redirect_chain == [(f"{_detail(session)}#message-{answer.pk}", 302)]
    assert views.FEEDBACK_SAVED in response.content.decode()
    feedback = AgentFeedback.objects.get(message=answer)
    assert (feedback.rating, feedback.comment, feedback.user_id) == (5, "Spot on", me.pk)

    response = client.post(url, {"thumb": "down", "comment": "On second thought, no"}, follow=True)
    assert views.FEEDBACK_REPLACED in response.content.decode()
    feedback = AgentFeedback.objects.get(message=answer)
    assert (feedback.rating, feedback.comment) == (1, "On second thought, no")

    client.post(url, {"rating": "3", "comment": ""})
    assert AgentFeedback.objects.get(message=answer).rating == 3
    assert AgentFeedback.objects.filter(message=answer).count() == 1


def test_a_thumb_keeps_the_category_the_app_gave(client, me):
    session, _, answer, _ = _conversation(me)
    services.feedback_give(
        user_id=me.pk, session_id=session.pk, message_id=answer.pk, rating=4, category="accuracy"
    )
    form = client.get(_detail(session)).context["transcript"][1]["form"]
    assert form["category"].value() == "accuracy"
    client.post(_feedback_url(session.pk, answer.pk), {"thumb": "up", "category": "accuracy"})
    feedback = AgentFeedback.objects.get(message=answer)
    assert (feedback.rating, feedback.category) == (5, "accuracy")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"rating": "9"}, "Select a valid choice"),
        ({"rating": "0"}, "Select a valid choice"),
        ({"rating": "five"}, "Select a valid choice"),
        ({"thumb": "sideways"}, "Select a valid choice"),
        ({}, forms.NO_RATING),
        ({"comment": "no rating"}, forms.NO_RATING),
        ({"thumb": "up", "rating": "2"}, forms.RATING_CONFLICT),
        ({"thumb": "up", "comment": "x" * (forms.COMMENT_MAX_LENGTH + 1)}, "at most 5000"),
        ({"thumb": "up", "category": "x" * 51}, "at most 50"),
        ({"thumb": "up", "comment": "nul\x00"}, "Null characters are not allowed"),
    ],
)
def test_bad_feedback_is_a_clear_error_and_writes_nothing(client, me, data, error):
    session, _, answer, _ = _conversation(me)
    response = client.post(_feedback_url(session.pk, answer.pk), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert views.FEEDBACK_NOT_SAVED in body and error in body
    # The transcript is shown again, the refused form open under its message.
    assert response.context["transcript"][1]["form"] is response.context["failed"]
    assert not AgentFeedback.objects.exists()


def test_a_thumb_matching_the_rating_is_accepted(client, me):
    session, _, answer, _ = _conversation(me)
    response = client.post(_feedback_url(session.pk, answer.pk), {"thumb": "down", "rating": "1"})
    assert response.status_code == 302
    assert AgentFeedback.objects.get(message=answer).rating == 1


def test_feedback_on_a_message_that_is_not_an_assistants_is_refused(client, me):
    session, question, *_ = _conversation(me)
    for data in ({"thumb": "up"}, {"rating": "nine"}):
        response = client.post(_feedback_url(session.pk, question.pk), data)
        assert response.status_code == 400
        assert response.content.decode().count(services.FEEDBACK_NOT_ASSISTANT) == 1
    assert not AgentFeedback.objects.exists()


def test_feedback_on_another_users_session_or_message_is_not_found(client, me, them):
    mine, _, my_answer, _ = _conversation(me)
    other_of_mine, _, other_answer, _ = _conversation(me)
    theirs, _, their_answer, _ = _conversation(them)
    for session_id, message_id in (
        (theirs.pk, their_answer.pk),  # their session and message
        (mine.pk, their_answer.pk),  # my session, their message
        (theirs.pk, my_answer.pk),  # their session, my message
        (mine.pk, other_answer.pk),  # my message, but of another of my sessions
        (mine.pk, 2**63 + 1),  # beyond bigint
        (2**63 + 1, my_answer.pk),
    ):
        for data in ({"thumb": "up"}, {"rating": "9"}):  # valid or not: 404 first
            response = client.post(_feedback_url(session_id, message_id), data)
            assert response.status_code == 404, (session_id, message_id, data)
    assert not AgentFeedback.objects.exists()
    assert other_of_mine.pk != mine.pk


def test_feedback_is_post_only_and_csrf_protected(me, client):
    session, _, answer, _ = _conversation(me)
    url = _feedback_url(session.pk, answer.pk)
    assert client.get(url).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(me)
    assert strict.post(url, {"thumb": "up"}).status_code == 403
    assert not AgentFeedback.objects.exists()


# --- row-level security, on purpose ------------------------------------------------------


def test_rows_of_other_users_stay_invisible_even_without_a_filter(client, me, them):
    mine = _sessions_at(me, [2], title="my own session")
    _sessions_at(them, [1, 3], title="their secret session")

    with transaction.atomic(), rls.user_context(me):
        # No user filter at all: the policies alone decide what comes back.
        assert list(AgentSession.objects.values_list("pk", flat=True)) == [mine[0].pk]
        # A selector asked for the other user's rows (a wrong id) finds none either.
        assert selectors.sessions_search(user_id=them.pk).items == []

    response = client.get(LIST)
    assert _titles(response) == ["my own session"]
    assert "their secret session" not in response.content.decode()
    searched = client.get(LIST, {"q": "secret"})
    assert b"their secret session" not in searched.content
