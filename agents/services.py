"""Writes for agents: sessions, their messages (an assistant reply with its usage), tool calls,
feedback, and ending a session.

The services run inside the caller's row-level-security context (a request's user, or
``rls.service_context()``): the policies of agents/sql/0002_rls.sql decide what is visible,
and every lookup here also names ``user_id``, so an admin's own calls touch only their own
sessions. A row that is not the user's is simply not found (``DoesNotExist``, a 404 in the
API: existence never leaks). Counters and totals of a session are kept by the triggers of
agents/sql/0003_session_counters.sql, never written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import RawSQL
from django.db.models.functions import Now

from agents.models import (
    AgentFeedback,
    AgentMessage,
    AgentSession,
    AgentToolCall,
    MessageRole,
    ToolCallStatus,
)
from usage import services as usage_services
from usage.catalog import CatalogModel, catalog
from usage.models import AIUsageRequest, AIUsageRequestKey
from witchcraft.platform import db_errors

# AgentError.code: how to answer.
INVALID = db_errors.INVALID  # 422
NOT_FOUND = "not_found"  # 404
CONFLICT = db_errors.CONFLICT  # 409

SESSION_ENDED = "This session has ended: it takes no new messages or tool calls."
TOOL_CALL_FINISHED = "This tool call has finished: it cannot be changed again."
TOOL_CALL_NOT_STARTED = "A tool call is started as pending or running."
UNKNOWN_MODEL = "Not an active model of the catalog."
AMBIGUOUS_MODEL = "Several providers offer a model of this name: name it in usage.provider."
UNKNOWN_PROVIDER_MODEL = "Not an active model of this provider."
MODEL_MISMATCH = "The message's model must be the model of its usage."
USAGE_NOT_ASSISTANT = "Only an assistant message carries usage."
NO_SUCH_MESSAGE = "No such message in this session."
FEEDBACK_NOT_ASSISTANT = "Feedback rates an assistant message, or the session as a whole."
REQUEST_ID_USED = "This request_id was already recorded, and not for a message of this session."
REQUEST_ID_REUSED = "This request_id was already recorded for a different message or usage."

# What a retried assistant message must repeat of the usage recorded the first time.
RETRY_MUST_MATCH = (
    "model_id",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "status",
    "reservation_id",
)
OPEN_STATUSES = (ToolCallStatus.PENDING, ToolCallStatus.RUNNING)
FINISHED_STATUSES = (ToolCallStatus.SUCCESS, ToolCallStatus.ERROR, ToolCallStatus.CANCELLED)
INT_MAX = 2_147_483_647


class AgentError(db_errors.Refused):
    """A write was refused; ``code`` says how to answer, ``field`` names the input at fault."""

    def __init__(self, code: str, message: str, *, field: str | None = None):
        super().__init__(code, message)
        self.field = field


@dataclass(frozen=True)
class MessageUsage:
    """The metered AI request behind an assistant message (recorded by record_ai_usage)."""

    provider: str  # provider slug, e.g. "openai"
    model: str  # the provider's model name, e.g. "gpt-5-mini"
    input_tokens: int
    output_tokens: int
    request_id: str
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    latency_ms: int | None = None
    time_to_first_token_ms: int | None = None
    status: str = "success"
    reservation_id: int | None = None  # the quota reservation it settles (priced by the server)


def _catalog_model(*, name: str, field: str) -> CatalogModel:
    """The active catalog model of that name (of an active provider), from the cached catalog."""
    found = catalog().named(name)
    if not found:
        raise AgentError(INVALID, UNKNOWN_MODEL, field=field)
    if len(found) > 1:
        raise AgentError(INVALID, AMBIGUOUS_MODEL, field=field)
    return found[0]


def _provider_model(*, provider: str, name: str) -> CatalogModel:
    model = catalog().of_provider(provider, name)
    if model is None:
        raise AgentError(INVALID, UNKNOWN_PROVIDER_MODEL, field="usage.model")
    return model


def _locked_session(*, user_id: int, session_id: int) -> AgentSession:
    """The user's session, row-locked for the transaction (DoesNotExist when not theirs)."""
    return (
        AgentSession.objects.select_for_update()
        .only("id", "is_active", "ended_at")
        .get(pk=session_id, user_id=user_id)
    )


def _message_of_session(*, user_id: int, session_id: int, message_id: int) -> AgentMessage:
    message = (
        AgentMessage.objects.filter(pk=message_id, session_id=session_id, user_id=user_id)
        .only("id", "role")
        .first()
    )
    if message is None:
        raise AgentError(NOT_FOUND, NO_SUCH_MESSAGE, field="message_id")
    return message


def _recorded_reply(
    *,
    user_id: int,
    session_id: int,
    role: str,
    content: str,
    model_id: int,
    usage: MessageUsage,
) -> AgentMessage | None:
    """The message recorded before with this usage's request_id, or None if there is none.

    Raises AgentError (conflict, field ``usage.request_id``) when the request_id was recorded
    for something else, or for a message or usage that differs from this one.
    """
    key = (
        AIUsageRequestKey.objects.filter(user_id=user_id, request_id=usage.request_id)
        .values("usage_id", "created_at", "agent_message_id", "agent_message__session_id")
        .first()
    )
    if key is None:
        return None
    if key["agent_message_id"] is None or key["agent_message__session_id"] != session_id:
        raise AgentError(CONFLICT, REQUEST_ID_USED, field="usage.request_id")
    message = AgentMessage.objects.get(pk=key["agent_message_id"])
    recorded = AIUsageRequest.objects.filter(
        pk=key["usage_id"],
        created_at=key["created_at"],  # created_at: one partition
    ).values(*RETRY_MUST_MATCH)
    retried = {
        "model_id": model_id,
        **{name: getattr(usage, name) for name in RETRY_MUST_MATCH if name != "model_id"},
    }
    if (message.role, message.content) != (role, content) or list(recorded) != [retried]:
        raise AgentError(CONFLICT, REQUEST_ID_REUSED, field="usage.request_id")
    return message


def session_create(
    *,
    user_id: int,
    title: str = "",
    agent_name: str | None = None,
    model: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> AgentSession:
    """Start a session for the user; return it. ``model`` is a catalog model name (active).

    Raises AgentError (invalid, field ``model``) for an unknown or inactive model.
    """
    fields: dict[str, Any] = {"user_id": user_id, "title": title}
    if agent_name is not None:
        fields["agent_name"] = agent_name
    if model is not None:
        fields["model_id"] = _catalog_model(name=model, field="model").id
    if metadata is not None:
        fields["metadata"] = metadata
    return AgentSession.objects.create(**fields)


def session_end(*, user_id: int, session_id: int) -> AgentSession:
    """End the user's session (inactive, ``ended_at`` now); return it.

    Ending an ended session changes nothing. Raises AgentSession.DoesNotExist when the session
    is not the user's.
    """
    with transaction.atomic():
        session = _locked_session(user_id=user_id, session_id=session_id)
        if session.is_active:
            session.is_active = False
            session.ended_at = Now()
            session.save(update_fields=["is_active", "ended_at"])
    return session


def message_add(
    *,
    user_id: int,
    session_id: int,
    role: str,
    content: str,
    model: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    latency_ms: int | None = None,
    usage: MessageUsage | None = None,
) -> tuple[AgentMessage, bool]:
    """Append a message to the user's active session; return it and whether it is new.

    The database numbers it (next position of the session) and keeps the session's counters.
    An assistant message may carry ``usage``: it is recorded through ``usage_record`` in the
    same transaction, linked to the session and to the message (the session's token and cost
    totals follow from it). The message's model, tokens and latency default to the usage's.

    A retry is safe: when the usage's ``request_id`` was already recorded for this same message
    of this session (same role, content, model and token counts), that message is returned
    (``False``) and nothing is written.

    Raises AgentSession.DoesNotExist (not the user's session); AgentError: invalid (usage on a
    non-assistant message, unknown model, usage refused by record_ai_usage as UsageError),
    conflict (ended session, request_id recorded for something else or with different
    content). Nothing is written then.
    """
    if usage is not None and role != MessageRole.ASSISTANT:
        raise AgentError(INVALID, USAGE_NOT_ASSISTANT, field="usage")
    model_id = _catalog_model(name=model, field="model").id if model is not None else None
    usage_model = None
    if usage is not None:
        usage_model = _provider_model(provider=usage.provider, name=usage.model)
        if model_id is not None and model_id != usage_model.id:
            raise AgentError(INVALID, MODEL_MISMATCH, field="model")
        model_id = usage_model.id
        input_tokens = usage.input_tokens if input_tokens is None else input_tokens
        output_tokens = usage.output_tokens if output_tokens is None else output_tokens
        latency_ms = usage.latency_ms if latency_ms is None else latency_ms

    with transaction.atomic():
        if usage is not None:
            # Quota first, then the session (the lock order of agents/sql/0005_quota_lock.sql).
            with connection.cursor() as cursor:
                cursor.execute("SELECT lock_user_quota(%s::bigint)", [user_id])
        session = _locked_session(user_id=user_id, session_id=session_id)
        if usage is not None:
            # Read under the quota lock: a concurrent retry has committed or not started.
            retried = _recorded_reply(
                user_id=user_id,
                session_id=session_id,
                role=role,
                content=content,
                model_id=usage_model.id,
                usage=usage,
            )
            if retried is not None:
                return retried, False
        if not session.is_active:
            raise AgentError(CONFLICT, SESSION_ENDED)
        message = AgentMessage.objects.create(
            session_id=session_id,
            user_id=user_id,
            role=role,
            content=content,
            position=None,  # numbered by the database (agent_messages_assign_position)
            model_id=model_id,
            input_tokens=input_tokens or 0,
            output_tokens=output_tokens or 0,
            latency_ms=latency_ms,
        )
        if usage is not None:
            usage_services.usage_record(
                user_id=user_id,
                provider_id=usage_model.provider_id,
                model_id=usage_model.id,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                request_id=usage.request_id,
                cached_input_tokens=usage.cached_input_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                latency_ms=usage.latency_ms,
                time_to_first_token_ms=usage.time_to_first_token_ms,
                status=usage.status,
                agent_session_id=session_id,
                agent_message_id=message.pk,
                reservation_id=usage.reservation_id,
            )
    return message, True


def tool_call_start(
    *,
    user_id: int,
    session_id: int,
    tool_name: str,
    arguments: dict[str, Any],
    message_id: int | None = None,
    status: str = ToolCallStatus.PENDING,
) -> AgentToolCall:
    """Record a tool call the agent makes in the user's active session; return it.

    ``message_id``, when given, must be a message of this session. Raises
    AgentSession.DoesNotExist (not the user's session); AgentError: not_found (``message_id``),
    invalid (``status`` other than pending or running), conflict (ended session).
    """
    if status not in OPEN_STATUSES:
        raise AgentError(INVALID, TOOL_CALL_NOT_STARTED, field="status")
    with transaction.atomic():
        session = _locked_session(user_id=user_id, session_id=session_id)
        if not session.is_active:
            raise AgentError(CONFLICT, SESSION_ENDED)
        if message_id is not None:
            _message_of_session(user_id=user_id, session_id=session_id, message_id=message_id)
        return AgentToolCall.objects.create(
            session_id=session_id,
            user_id=user_id,
            message_id=message_id,
            tool_name=tool_name,
            arguments=arguments,
            status=status,
        )


def tool_call_finish(
    *,
    user_id: int,
    session_id: int,
    call_id: int,
    status: str,
    result: Any = None,
    error: str = "",
) -> AgentToolCall:
    """Move a tool call on: to ``running``, or finish it (success, error, cancelled) with its
    result or error; return it.

    On finishing, ``completed_at`` is the database's now and ``duration_ms`` the time since the
    call was started. Works on an ended session too (a call may finish after its session).
    Raises AgentToolCall.DoesNotExist (not a call of the user's session); AgentError: conflict
    (the call has finished already: it never changes again).
    """
    with transaction.atomic():
        call = (
            AgentToolCall.objects.select_for_update()
            .only("id", "status")
            .get(pk=call_id, session_id=session_id, user_id=user_id)
        )
        if call.status in FINISHED_STATUSES:
            raise AgentError(CONFLICT, TOOL_CALL_FINISHED)
        if status == ToolCallStatus.RUNNING:
            changes: dict[str, Any] = {"status": status}
        else:
            changes = {
                "status": status,
                "result": result,
                "error": error,
                "completed_at": Now(),
                # The same clock as completed_at (Now() is statement_timestamp() here).
                "duration_ms": RawSQL(
                    "least(greatest(0, round(extract(epoch FROM statement_timestamp()"
                    " - started_at) * 1000)), %s)::integer",
                    [INT_MAX],
                ),
            }
        AgentToolCall.objects.filter(pk=call.pk).update(**changes)
        return AgentToolCall.objects.get(pk=call.pk)


def feedback_give(
    *,
    user_id: int,
    session_id: int,
    rating: int,
    comment: str = "",
    category: str = "",
    message_id: int | None = None,
) -> tuple[AgentFeedback, bool]:
    """Rate an assistant message of the user's session, or the session as a whole; return the
    feedback and whether it is new.

    One feedback per user and message (and one for the session as a whole): giving it again
    replaces the rating, comment and category (a thumbs up turned down), so a retry is safe.
    Ended sessions take feedback too. Raises AgentSession.DoesNotExist (not the user's
    session); AgentError: not_found (``message_id`` not of this session), invalid (not an
    assistant message).
    """
    AgentSession.objects.only("id").get(pk=session_id, user_id=user_id)
    if message_id is not None:
        message = _message_of_session(user_id=user_id, session_id=session_id, message_id=message_id)
        if message.role != MessageRole.ASSISTANT:
            raise AgentError(INVALID, FEEDBACK_NOT_ASSISTANT, field="message_id")
    values = {"rating": rating, "comment": comment, "category": category}
    mine = AgentFeedback.objects.filter(user_id=user_id, session_id=session_id)
    mine = (
        mine.filter(message__isnull=True)
        if message_id is None
        else mine.filter(message_id=message_id)
    )
    for _ in range(2):  # a concurrent first feedback makes the insert lose: then update it
        with transaction.atomic():
            feedback = mine.select_for_update().first()
            if feedback is not None:
                for name, value in values.items():
                    setattr(feedback, name, value)
                feedback.save(update_fields=list(values))
                return feedback, False
            try:
                with transaction.atomic():
                    feedback = AgentFeedback.objects.create(
                        user_id=user_id, session_id=session_id, message_id=message_id, **values
                    )
            except IntegrityError as exc:
                if db_errors.sqlstate(exc) != db_errors.UNIQUE_VIOLATION:
                    raise
                continue
            return feedback, True
    raise AssertionError("unreachable: the competing feedback is visible on the second pass")
