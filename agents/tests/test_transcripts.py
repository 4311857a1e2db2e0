"""The transcript selector (agents/transcripts.py), read as the runtime role in its user's
row-level-security context, on the real database."""

import json

import pytest
from django.db import transaction

from agents import selectors, services, transcripts
from agents.models import AgentSession, MessageRole
from witchcraft.platform import rls
from witchcraft.testing.factories import AgentSessionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _say(session, role: str, content: str):
    message, _ = services.message_add(
        user_id=session.user_id, session_id=session.pk, role=role, content=content
    )
    return message


def _call(session, *, message_id=None, arguments=None, result=None):
    call = services.tool_call_start(
        user_id=session.user_id,
        session_id=session.pk,
        tool_name="search",
        arguments=arguments or {},
        message_id=message_id,
    )
    if result is not None:
        services.tool_call_finish(
            user_id=session.user_id,
            session_id=session.pk,
            call_id=call.pk,
            status="success",
            result=result,
        )
    return call


def _read(user, session_id: int) -> transcripts.SessionTranscript:
    with transaction.atomic(), rls.user_context(user):
        return transcripts.transcript_get(user_id=user.pk, session_id=session_id)


def test_each_message_carries_its_tool_calls_and_the_viewers_feedback():
    user = UserFactory()
    session = AgentSessionFactory(user=user)
    question = _say(session, MessageRole.USER, "What is in the file?")
    answer = _say(session, MessageRole.ASSISTANT, "Let me read it.")
    first = _call(session, message_id=answer.pk, arguments={"z": 1, "a": "é"}, result=[1, 2])
    running = _call(session, message_id=answer.pk)
    loose = _call(session)
    services.feedback_give(
        user_id=user.pk, session_id=session.pk, message_id=answer.pk, rating=2, comment="Slow"
    )
    services.feedback_give(user_id=user.pk, session_id=session.pk, rating=4)

    shaped = _read(user, session.pk)

    assert shaped.session.pk == session.pk
    assert [entry.message.pk for entry in shaped.entries] == [question.pk, answer.pk]
    asked, answered = shaped.entries
    assert asked.tool_calls == [] and asked.feedback is None
    assert [shown.call.pk for shown in answered.tool_calls] == [first.pk, running.pk]
    # Arguments and result as indented JSON, keys sorted, text unescaped; no result yet: None.
    shown = answered.tool_calls[0]
    assert shown.arguments == json.dumps({"a": "é", "z": 1}, indent=2, ensure_ascii=False)
    assert shown.arguments.index('"a"') < shown.arguments.index('"z"') and "é" in shown.arguments
    assert shown.result == "[\n  1,\n  2\n]"
    assert answered.tool_calls[1].result is None
    assert (answered.feedback.rating, answered.feedback.comment) == (2, "Slow")
    assert [shown.call.pk for shown in shaped.other_tool_calls] == [loose.pk]
    assert shaped.session_feedback.rating == 4 and shaped.session_feedback.message_id is None
    assert shaped.shown_ids == {question.pk, answer.pk}
    assert not shaped.truncated


def test_calls_of_messages_left_out_go_with_the_other_calls(monkeypatch):
    monkeypatch.setattr(selectors, "DETAIL_LIMIT", 2)
    user = UserFactory()
    session = AgentSessionFactory(user=user)
    early = _say(session, MessageRole.ASSISTANT, "early")
    early_call = _call(session, message_id=early.pk)
    later = [_say(session, MessageRole.ASSISTANT, f"later {n}") for n in range(2)]

    shaped = _read(user, session.pk)

    assert shaped.truncated
    assert [entry.message.pk for entry in shaped.entries] == [m.pk for m in later]
    assert shaped.shown_ids == {m.pk for m in later}
    assert [shown.call.pk for shown in shaped.other_tool_calls] == [early_call.pk]
    assert all(entry.tool_calls == [] for entry in shaped.entries)


def test_an_empty_session_has_no_entries():
    user = UserFactory()
    session = AgentSessionFactory(user=user)
    shaped = _read(user, session.pk)
    assert shaped.entries == [] and shaped.other_tool_calls == []
    assert shaped.session_feedback is None and shaped.shown_ids == frozenset()


def test_another_users_session_is_not_found():
    owner, other = UserFactory(), UserFactory()
    session = AgentSessionFactory(user=owner)
    _say(session, MessageRole.USER, "private")
    with pytest.raises(AgentSession.DoesNotExist):
        _read(other, session.pk)
    # Asked with the owner's id but in the other user's context: the policies hide it too.
    with (
        pytest.raises(AgentSession.DoesNotExist),
        transaction.atomic(),
        rls.user_context(other),
    ):
        transcripts.transcript_get(user_id=owner.pk, session_id=session.pk)
