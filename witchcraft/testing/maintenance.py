"""The per-domain steps of daily_maintenance and monthly_maintenance, called the way tests
need them: as the owner (the orchestrators reach them so), and as the runtime role in every
context (refused)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager

from django.db import DatabaseError, connection, transaction

from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory

CONTEXTS = ("user", "admin", "anonymous", "service")

# What a step owes the runtime role, granted or not: its own refusal everywhere but the service
# context (the check that keeps it safe if a grant is ever added).
SERVICE_ONLY = {"user": "refused", "admin": "refused", "anonymous": "refused", "service": "ran"}


class _Undo(Exception):
    """Rolls back one call, whatever it did."""


def run_as_owner(function: str):
    """``SELECT <function>`` as the test connection's role, outside any context (the owner:
    the service context, as inside an orchestrator); a jsonb value decoded."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}")  # a function the test names
        value = cursor.fetchone()[0]
    return json.loads(value) if isinstance(value, str) else value


def _context(who: str) -> AbstractContextManager:
    if who == "service":
        return rls.service_context()
    caller = {"user": UserFactory, "admin": lambda: UserFactory(is_staff=True)}.get(who)
    return rls.user_context(caller() if caller else None)


_REFUSAL = ": only the service context may run maintenance"  # each step's own words


def _outcome(error: DatabaseError) -> str:
    cause = error.__cause__
    message = cause.diag.message_primary or ""
    if cause.sqlstate == "42501" and message.startswith("permission denied for function"):
        return "not granted"
    if cause.sqlstate == "42501" and message.endswith(_REFUSAL):
        return "refused"
    return f"{cause.sqlstate}: {message}"


def runtime_role_outcomes(function: str, *, granted: bool = False) -> dict[str, str]:
    """What ``SELECT <function>`` (``public.f()``) does as the runtime role in each context:
    "ran", "not granted" (no EXECUTE), "refused" (the function's own service-context check), or
    the error. ``granted`` grants it EXECUTE first, so that the function's own check is what
    answers. Every call, and the grant, is rolled back."""
    found: dict[str, str] = {}
    for who in CONTEXTS:
        try:
            with transaction.atomic():
                if granted:
                    with connection.cursor() as cursor:
                        cursor.execute(f"GRANT EXECUTE ON FUNCTION {function} TO witchcraft_app")
                try:
                    with transaction.atomic(), _context(who), connection.cursor() as cursor:
                        cursor.execute(f"SELECT {function}")
                    found[who] = "ran"
                except DatabaseError as error:
                    found[who] = _outcome(error)
                raise _Undo
        except _Undo:
            pass
    return found
