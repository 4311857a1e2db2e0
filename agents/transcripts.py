"""The user's transcript of one session, shaped for the page: each message with the tool calls
it made and the viewer's feedback on it, the tool calls tied to no message shown, and the
viewer's rating of the whole session.

A read like the other selectors: it runs in the caller's row-level-security context and names
``user_id``, so another user's session is not found (``AgentSession.DoesNotExist``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from agents import selectors
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
    feedback: AgentFeedback | None  # the viewer's feedback on this message, if any


@dataclass(frozen=True)
class SessionTranscript:
    session: AgentSession
    entries: list[TranscriptEntry]  # the latest selectors.DETAIL_LIMIT messages, by position
    truncated: bool  # earlier messages exist beyond selectors.DETAIL_LIMIT
    other_tool_calls: list[ShownToolCall]  # calls whose message is not among the entries
    session_feedback: AgentFeedback | None  # the viewer's rating of the whole session
    shown_ids: frozenset[int]  # the ids of the messages among the entries


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def transcript_get(*, user_id: int, session_id: int) -> SessionTranscript:
    """The user's session as its transcript page shows it, in the queries of
    :func:`agents.selectors.session_detail` (a fixed number, whatever the session holds).

    Raises AgentSession.DoesNotExist when the session is not the user's.
    """
    detail = selectors.session_detail(user_id=user_id, session_id=session_id)
    shown = frozenset(message.pk for message in detail.messages)
    calls_of: dict[int, list[ShownToolCall]] = defaultdict(list)
    other_calls = []
    for call in detail.tool_calls:
        item = ShownToolCall(
            call=call,
            arguments=_pretty(call.arguments),
            result=None if call.result is None else _pretty(call.result),
        )
        if call.message_id in shown:
            calls_of[call.message_id].append(item)
        else:
            other_calls.append(item)
    # The viewer's own feedback only (session_detail filters by user): one per message at most.
    feedback_of = {f.message_id: f for f in detail.feedback if f.message_id is not None}
    return SessionTranscript(
        session=detail.session,
        entries=[
            TranscriptEntry(
                message=message,
                tool_calls=calls_of.get(message.pk, []),
                feedback=feedback_of.get(message.pk),
            )
            for message in detail.messages
        ],
        truncated=detail.messages_truncated,
        other_tool_calls=other_calls,
        session_feedback=next((f for f in detail.feedback if f.message_id is None), None),
        shown_ids=shown,
    )
