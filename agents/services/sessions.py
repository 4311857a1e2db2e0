"""Sessions: starting one (with its catalog model) and ending it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.functions import Now

from agents.models import AgentSession
from agents.services.errors import AMBIGUOUS_MODEL, INVALID, UNKNOWN_MODEL, AgentError
from usage.catalog import CatalogModel, catalog


def _catalog_model(*, name: str, field: str) -> CatalogModel:
    """The active catalog model of that name (of an active provider), from the cached catalog."""
    found = catalog().named(name)
    if not found:
        raise AgentError(INVALID, UNKNOWN_MODEL, field=field)
    if len(found) > 1:
        raise AgentError(INVALID, AMBIGUOUS_MODEL, field=field)
    return found[0]


def _locked_session(*, user_id: int, session_id: int) -> AgentSession:
    """The user's session, row-locked for the transaction (DoesNotExist when not theirs)."""
    return (
        AgentSession.objects.select_for_update()
        .only("id", "is_active", "ended_at")
        .get(pk=session_id, user_id=user_id)
    )


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
