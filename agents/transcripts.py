"""A session's transcript, shaped for a page: each message with the tool calls it made (their
arguments and results as indented JSON) and the feedback on it, the tool calls tied to no
message shown, and the rating of the whole session.

One shaping (:func:`transcript_shape`) for both readers:

- the user's own page (``/me/sessions/<id>/``, :func:`transcript_get`): their latest messages,
  read in their row-level-security context (another user's session is not found);
- the staff page (``/dashboard/agents/<id>/``, :func:`staff_transcript_get`): any session, a
  page of messages at a time, each entry also carrying the usage rows behind the message
  (request id, provider and model, status or error, tokens, cost, latency).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agents import dashboard_selectors, selectors
from agents.models import AgentFeedback, AgentMessage, AgentSession, AgentToolCall


@dataclass(frozen=True)
class ShownToolCall:
    call: AgentToolCall
    arguments: str  # the arguments as indented JSON
    result: str | None  # the result as indented JSON; None while the call has none


@dataclass(frozen=True)
class TranscriptEntry:
    message: AgentMessage
    tool_calls: list[ShownToolCall]  # the calls this message made, oldest first
    feedback: AgentFeedback | None  # the session owner's feedback on this message, if any
    # The usage rows recorded for this message (staff page only; at most one per message).
    usage: list[dashboard_selectors.MessageUsage] = field(default_factory=list)

    @property
    def usage_cost(self):
        """What this message's usage rows cost (None without any)."""
        return sum((row.cost for row in self.usage), start=Decimal(0)) if self.usage else None


@dataclass(frozen=True)
class ShapedTranscript:
    entries: list[TranscriptEntry]  # in the order of the messages given
    other_tool_calls: list[ShownToolCall]  # calls whose message is not among the entries
    session_feedback: AgentFeedback | None  # the rating of the whole session
    shown_ids: frozenset[int]  # the ids of the messages among the entries


@dataclass(frozen=True)
class SessionTranscript:
    session: AgentSession
    entries: list[TranscriptEntry]  # the latest selectors.DETAIL_LIMIT messages, by position
    truncated: bool  # earlier messages exist beyond selectors.DETAIL_LIMIT
    other_tool_calls: list[ShownToolCall]  # calls whose message is not among the entries
    session_feedback: AgentFeedback | None  # the viewer's rating of the whole session
    shown_ids: frozenset[int]  # the ids of the messages among the entries


@dataclass(frozen=True)
class StaffTranscript:
    page: dashboard_selectors.TranscriptPage  # the session, its stats, the page's position
    entries: list[TranscriptEntry]  # this page's messages, by position, with their usage
    other_tool_calls: list[ShownToolCall]  # calls tied to no message (first page only)
    more_other_tool_calls: bool  # more such calls exist than are shown
    session_feedback: AgentFeedback | None

    @property
    def session(self) -> AgentSession:
        return self.page.session


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _shown(call: AgentToolCall) -> ShownToolCall:
    return ShownToolCall(
        call=call,
        arguments=_pretty(call.arguments),
        result=None if call.result is None else _pretty(call.result),
    )


def transcript_shape(
    *,
    messages: Iterable[AgentMessage],
    tool_calls: Iterable[AgentToolCall],
    feedback: Iterable[AgentFeedback],
    usage_of: dict[int, list] | None = None,
) -> ShapedTranscript:
    """Tie each tool call and feedback row to its message among ``messages`` (in their order);
    the calls tied to another message or to none are returned apart. No query."""
    messages = list(messages)
    shown = frozenset(message.pk for message in messages)
    calls_of: dict[int, list[ShownToolCall]] = defaultdict(list)
    other_calls = []
    for call in tool_calls:
        if call.message_id in shown:
            calls_of[call.message_id].append(_shown(call))
        else:
            other_calls.append(_shown(call))
    feedback = list(feedback)
    # The session's feedback is its owner's (one per message at most, one for the session).
    feedback_of = {f.message_id: f for f in feedback if f.message_id is not None}
    usage_of = usage_of or {}
    return ShapedTranscript(
        entries=[
            TranscriptEntry(
                message=message,
                tool_calls=calls_of.get(message.pk, []),
                feedback=feedback_of.get(message.pk),
                usage=usage_of.get(message.pk, []),
            )
            for message in messages
        ],
        other_tool_calls=other_calls,
        session_feedback=next((f for f in feedback if f.message_id is None), None),
        shown_ids=shown,
    )


def transcript_get(*, user_id: int, session_id: int) -> SessionTranscript:
    """The user's session as its transcript page shows it, in the queries of
    :func:`agents.selectors.session_detail` (a fixed number, whatever the session holds).

    Raises AgentSession.DoesNotExist when the session is not the user's.
    """
    detail = selectors.session_detail(user_id=user_id, session_id=session_id)
    shaped = transcript_shape(
        messages=detail.messages, tool_calls=detail.tool_calls, feedback=detail.feedback
    )
    return SessionTranscript(
        session=detail.session,
        entries=shaped.entries,
        truncated=detail.messages_truncated,
        other_tool_calls=shaped.other_tool_calls,
        session_feedback=shaped.session_feedback,
        shown_ids=shaped.shown_ids,
    )


def staff_transcript_get(*, session_id: int, page: int = 1) -> StaffTranscript:
    """Any session as the staff page shows it: one page of messages (by position) with the
    tool calls, feedback and usage rows of those messages, in the queries of
    :func:`agents.dashboard_selectors.session_transcript` (a fixed number, whatever the page).

    Raises AgentSession.DoesNotExist when there is no such session.
    """
    read = dashboard_selectors.session_transcript(session_id=session_id, page=page)
    shaped = transcript_shape(
        messages=read.messages,
        tool_calls=[*read.tool_calls, *read.unattached_tool_calls],
        feedback=read.feedback,
        usage_of=read.usage_of,
    )
    return StaffTranscript(
        page=read,
        entries=shaped.entries,
        other_tool_calls=shaped.other_tool_calls,
        more_other_tool_calls=read.more_unattached,
        session_feedback=shaped.session_feedback,
    )
