"""Impersonation (django-hijack): who may act as whom, the database identity while it lasts,
and its audit trail.

A staff member starts an impersonation with a POST to hijack's acquire view (the "Impersonate"
button on the user's admin page, the "Act as this user" form on the staff 360° page) and lands on
the user's overview (``/me/``); the "Stop" button of the banner every page shows
(templates/base.html) posts to its release view and lands back on that user's 360° page
(``dashboard:user``). While it lasts, requests run with the database identity

- ``app.user_id`` = the impersonated user (the pages show that user's rows, nothing more),
- ``app.is_admin`` = false (the impersonated user is never staff: the staff member's admin
  powers do not follow them into someone else's session),
- ``app.actor_id`` = the staff member, so every audit row written says who really acted.

Audited, each row with the staff member as actor and the user as subject:
``impersonation_started`` and ``impersonation_ended`` (hijack's signals, signing out, or the
impersonation becoming disallowed); ``impersonated_action`` for every write (any method but GET,
HEAD, OPTIONS, TRACE); ``impersonation_page_viewed`` for every page viewed (a GET answered with
HTML, so neither static files nor JSON nor redirects). Each with its method, path (secrets
masked) and response status; never a body nor a query string.
"""

from __future__ import annotations

import logging
import re
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model, user_logged_out
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection, transaction
from django.dispatch import receiver
from hijack.signals import hijack_ended, hijack_started

from accounts import audit
from witchcraft.platform import rls

logger = logging.getLogger(__name__)

# Where django-hijack 3.7 keeps the impersonation in the session: the list of the primary keys
# (as strings) of the users who started one, the first being the staff member at the keyboard.
HIJACK_HISTORY = "hijack_history"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Every page a staff member views as the user (a GET answered with HTML).
PAGE_VIEWED = "impersonation_page_viewed"
# A path segment that looks like a credential (a long run of token characters with a digit or a
# capital, unlike a page's words), masked even where no URL pattern names it (a mistyped link
# that answers 404 has no resolved kwargs).
_OPAQUE_SEGMENT = re.compile(r"(?<=/)(?=[^/]*[0-9A-Z])[A-Za-z0-9_\-.~%:=+]{24,}(?=/|$)")
REDACTED = "[redacted]"

REASON_RELEASED = "released"
REASON_SIGNED_OUT = "signed_out"
REASON_NOT_ALLOWED = "no_longer_allowed"


def _eligible(*, hijacker, hijacked) -> bool:
    if hijacked is None or not hijacked.is_active or hijacked.pk == hijacker.pk:
        return False
    if hijacked.is_superuser or hijacked.is_staff:
        return False
    return bool(hijacker.is_active and hijacker.is_staff)


def may_impersonate(*, hijacker, hijacked) -> bool:
    """Staff may impersonate active plain users: never a superuser, another staff member or
    themselves; with ``STAFF_2FA_REQUIRED``, only from a session that passed the second factor.
    Returns whether ``hijacker`` may act as ``hijacked`` (``HIJACK_PERMISSION_CHECK``)."""
    if not _eligible(hijacker=hijacker, hijacked=hijacked):
        return False
    if settings.STAFF_2FA_REQUIRED:
        verified = getattr(hijacker, "is_verified", None)  # set by django_otp's middleware
        return bool(verified and verified())
    return True


def impersonator_of(request):
    """Return the staff member impersonating ``request.user``, or None (not impersonating)."""
    return getattr(request, "impersonator", None)


# --- audit ---------------------------------------------------------------------------------


def _audit(event: str, request, *, staff, user, **details) -> None:
    audit.audit_event(
        event,
        user_id=user.pk,
        details={
            "staff_email": staff.email,
            "user_email": user.email,
            "user_name": user.full_name,  # user-supplied: clean_text escapes CR/LF
            **details,
        },
        user_agent=audit.request_user_agent(request),
        target_type="user",
        target_id=user.pk,
    )


def _path_without_secrets(request) -> str:
    """``request.path`` (never the query string) with URL parts named like secrets (a reset
    link's token) masked, and any other segment that looks like a credential too."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    for name, value in (match.kwargs if match else {}).items():
        lowered = name.lower()
        if lowered in audit.SECRET_KEYS or "token" in lowered or "secret" in lowered:
            path = path.replace(str(value), REDACTED)
    return _OPAQUE_SEGMENT.sub(REDACTED, path)


def _is_page_view(request, response) -> bool:
    """A page the staff member sees: a GET answered with HTML that is not a redirect (static
    files are answered before the middleware, and with another type)."""
    return (
        request.method == "GET"
        and not 300 <= response.status_code < 400
        and response.get("Content-Type", "").startswith("text/html")
    )


def _event_of(request, response) -> str | None:
    """The audit event this request makes under impersonation, or None (a read that is not a
    page, or hijack's own views, audited by their signals)."""
    if _is_hijack_view(request):
        return None
    if request.method not in SAFE_METHODS:
        return audit.IMPERSONATED_ACTION
    return PAGE_VIEWED if _is_page_view(request, response) else None


def _audit_action(request, response, *, staff, user, event=audit.IMPERSONATED_ACTION) -> None:
    audit.audit_event(
        event,
        user_id=user.pk,
        details={
            "method": request.method,
            "path": _path_without_secrets(request),
            "status": response.status_code,
            "staff_email": staff.email,
        },
        user_agent=audit.request_user_agent(request),
        target_type="user",
        target_id=user.pk,
    )


@receiver(hijack_started, dispatch_uid="accounts.impersonation.started")
def _audit_started(sender, request, hijacker, hijacked, **kwargs) -> None:
    # Runs in the acquire request's context: the staff member is the user (and so the actor).
    _audit(audit.IMPERSONATION_STARTED, request, staff=hijacker, user=hijacked)


@receiver(hijack_ended, dispatch_uid="accounts.impersonation.ended")
def _audit_ended(sender, request, hijacker, hijacked, **kwargs) -> None:
    # Runs in the release request's context: the impersonated user, with the staff member as
    # actor (ImpersonationMiddleware).
    _audit(
        audit.IMPERSONATION_ENDED, request, staff=hijacker, user=hijacked, reason=REASON_RELEASED
    )


@receiver(user_logged_out, dispatch_uid="accounts.impersonation.signed_out")
def _audit_signed_out(sender, request, user, **kwargs) -> None:
    staff = impersonator_of(request) if request is not None else None
    if staff is not None and user is not None:
        _audit(audit.IMPERSONATION_ENDED, request, staff=staff, user=user, reason=REASON_SIGNED_OUT)


# --- middleware ----------------------------------------------------------------------------


class ImpersonationMiddleware:
    """Tell the database who really acts while a staff member impersonates a user.

    Placed after HijackUserMiddleware and before witchcraft.platform.rls.RowLevelSecurityMiddleware,
    which reads ``request.rls_actor``. Like authentication, it reads as the migration role,
    before the identity is set. Each request checks again that the impersonation is still
    allowed (the staff member still active staff, the user still a plain active account); when
    it is not, it is ended: audited, the session flushed, the request goes on anonymous.

    A write whose transaction was rolled back (a 5xx answer) is audited here afterwards, in a
    transaction of its own; the others are audited inside the request's transaction
    (ImpersonatedActionAuditMiddleware), so the row commits with the write or not at all.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.impersonator = None
        if request.path in rls.RowLevelSecurityMiddleware.EXEMPT_PATHS:
            return self.get_response(request)  # touches neither the session nor the database
        history = request.session.get(HIJACK_HISTORY) or []
        user = request.user
        if not history or not user.is_authenticated:
            return self.get_response(request)

        staff = self._staff(history)
        if staff is None or not _eligible(hijacker=staff, hijacked=user):
            self._end(request, staff=staff, user=user)
            return self.get_response(request)

        request.impersonator = staff
        request.rls_actor = staff
        request.impersonated_action_audited = False
        response = self.get_response(request)
        event = _event_of(request, response)
        if event is not None and not request.impersonated_action_audited:
            self._audit_afterwards(request, response, staff=staff, user=user, event=event)
        return response

    @staticmethod
    def _staff(history):
        if len(history) != 1:  # staff cannot be impersonated, so there is never a chain
            return None
        try:
            return get_user_model()._base_manager.filter(pk=int(history[0])).first()
        except (TypeError, ValueError):
            return None

    @staticmethod
    def _end(request, *, staff, user) -> None:
        identity = rls.Identity(
            is_service=True,
            actor_id=getattr(staff, "pk", None),
            request_id=uuid.uuid4().hex,
            ip=rls.client_ip(request),
        )
        with transaction.atomic(), rls.identity_context(identity):
            audit.audit_event(
                audit.IMPERSONATION_ENDED,
                user_id=user.pk,
                details={
                    "staff_email": getattr(staff, "email", ""),
                    "user_email": user.email,
                    "reason": REASON_NOT_ALLOWED,
                },
                user_agent=audit.request_user_agent(request),
                target_type="user",
                target_id=user.pk,
            )
        request.session.flush()
        request.user = AnonymousUser()

    @staticmethod
    def _audit_afterwards(request, response, *, staff, user, event) -> None:
        try:
            with (
                transaction.atomic(),
                rls.user_context(
                    user,
                    actor=staff,
                    request_id=getattr(request, "request_id", ""),
                    ip=rls.client_ip(request),
                ),
            ):
                _audit_action(request, response, staff=staff, user=user, event=event)
        except DatabaseError:
            logger.exception("could not audit an impersonated %s %s", request.method, request.path)


class ImpersonatedActionAuditMiddleware:
    """Audit each write made and each page viewed while impersonating, inside the request's
    transaction.

    Placed right after witchcraft.platform.rls.RowLevelSecurityMiddleware: the row is written in the
    request's identity (the impersonated user, the staff member as actor) and commits with
    whatever the request wrote. The start and the end are audited by their own signals.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        staff = impersonator_of(request)
        user = request.user  # captured now: signing out replaces it
        response = self.get_response(request)
        if staff is None:
            return response
        event = _event_of(request, response)
        if (
            event is None
            or response.status_code >= 500  # rolled back: audited afterwards
            or connection.needs_rollback
        ):
            return response
        _audit_action(request, response, staff=staff, user=user, event=event)
        request.impersonated_action_audited = True
        return response


def _is_hijack_view(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return match is not None and match.namespace == "hijack"
