"""The refusals of the agents services: the codes that say how to answer, the messages the
tests assert on, and AgentError that carries them."""

from __future__ import annotations

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


class AgentError(db_errors.Refused):
    """A write was refused; ``code`` says how to answer, ``field`` names the input at fault."""

    def __init__(self, code: str, message: str, *, field: str | None = None):
        super().__init__(code, message)
        self.field = field
