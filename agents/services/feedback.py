"""Feedback: a user's rating of an assistant message, or of a session as a whole."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from agents.models import AgentFeedback, AgentSession, MessageRole
from agents.services.errors import FEEDBACK_NOT_ASSISTANT, INVALID, AgentError
from agents.services.messages import _message_of_session
from witchcraft.platform import db_errors


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
