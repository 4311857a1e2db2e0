"""How a refusal is answered: one table from the vocabulary of ``db_errors.Refused`` codes to
HTTP, read by the API's one handler of refusals (witchcraft/api.py), by the pages that put a
refusal on their form, and by the payment provider's webhook.

A service raises a ``Refused`` (or a domain's subclass) and never chooses a status itself;
endpoints let it propagate, views put it on their form with :func:`form_add_refusal` and answer
its ``view_status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from witchcraft.platform import db_errors
from witchcraft.platform.api_errors import CODES


@dataclass(frozen=True)
class Answer:
    """The answer to a refusal: the API's status and error code, and the status of a Django
    view (a page re-rendering its form, the payment provider's webhook)."""

    api_status: int
    view_status: int
    api_code: str


def _answer(api_status: int, view_status: int, api_code: str | None = None) -> Answer:
    return Answer(api_status, view_status, api_code or CODES[api_status])


ANSWERS = {
    # The API answers a refused input as it answers an input the schema refuses (422
    # validation_error); a view answers it 400, as a page does when its form itself refuses.
    db_errors.INVALID: _answer(422, 400),
    db_errors.FORBIDDEN: _answer(403, 403),
    db_errors.NOT_FOUND: _answer(404, 404),
    db_errors.CONFLICT: _answer(409, 409),
    db_errors.LOCKED: _answer(429, 429),
    # Its own error code: the same one the bearer check answers for a token lacking a scope.
    db_errors.INSUFFICIENT_SCOPE: _answer(403, 403, db_errors.INSUFFICIENT_SCOPE),
}
# A code outside the vocabulary: a plain bad request.
UNKNOWN = _answer(400, 400)


def refusal_answer(refused: db_errors.Refused) -> Answer:
    """Return how to answer ``refused`` (by its code)."""
    return ANSWERS.get(refused.code, UNKNOWN)


def refusal_details(refused: db_errors.Refused) -> Any:
    """The ``details`` of the API's answer: with details of its own, an object holding them and
    the field; with a field only, the list a refused schema answers (``[{"field",
    "message"}]``); else None."""
    if refused.details is not None:
        return {"field": refused.field, **refused.details}
    if refused.field is not None:
        return [{"field": refused.field, "message": refused.message}]
    return None


def form_add_refusal(form: forms.Form, refused: db_errors.Refused) -> None:
    """Put the refusal's messages on ``form``: on its field when the form has that field, else
    on the form as a whole."""
    field = refused.field if refused.field in form.fields else None
    form.add_error(field, list(refused.messages))
