"""Messages: appending one to a session, an assistant reply with the usage it records, safe
to retry by its request_id."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from agents.models import AgentMessage, MessageRole
from agents.services.errors import (
    CONFLICT,
    INVALID,
    MODEL_MISMATCH,
    NO_SUCH_MESSAGE,
    NOT_FOUND,
    REQUEST_ID_REUSED,
    REQUEST_ID_USED,
    SESSION_ENDED,
    UNKNOWN_PROVIDER_MODEL,
    USAGE_NOT_ASSISTANT,
    AgentError,
)
from agents.services.sessions import _catalog_model, _locked_session
from usage import services as usage_services
from usage.catalog import CatalogModel, catalog
from usage.models import AIUsageRequest, AIUsageRequestKey

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


def _provider_model(*, provider: str, name: str) -> CatalogModel:
    model = catalog().of_provider(provider, name)
    if model is None:
        raise AgentError(INVALID, UNKNOWN_PROVIDER_MODEL, field="usage.model")
    return model


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
    access_token_id: int | None = None,
) -> tuple[AgentMessage, bool]:
    """Append a message to the user's active session; return it and whether it is new.

    The database numbers it (next position of the session) and keeps the session's counters.
    An assistant message may carry ``usage``: it is recorded through ``usage_record`` in the
    same transaction, linked to the session and to the message (the session's token and cost
    totals follow from it), naming ``access_token_id``, the API token that sent it (the
    caller's bearer token, never a client's field). The message's model, tokens and latency
    default to the usage's.

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
                access_token_id=access_token_id,
            )
    return message, True
