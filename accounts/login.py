"""Signing in: credentials, lockout, the session and its audit trail.

Sign-in happens before anyone is known, so the credential check runs in the service context
(DESIGN.md). Attempts for one account, and from one IP, are serialised with advisory locks, so
parallel guesses cannot get past the lockout; failures are counted from ``audit_logs``
(``idx_audit_logs_failed_logins``). Every refusal, whatever its cause (unknown email, wrong
password, locked account or IP, inactive account), reads the same.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login as django_login
from django.contrib.auth.hashers import make_password
from django.db import connection

from accounts import audit
from accounts.emails import normalize_email
from accounts.models import User, UserSession
from witchcraft.platform import rls

INVALID_CREDENTIALS = "That email and password do not match an account, or sign-in is paused."
BACKEND = "django.contrib.auth.backends.ModelBackend"


def lock_attempts(*, email: str, ip: str) -> None:
    """Serialise sign-in attempts (either step) on one account and one IP until this
    transaction ends, so parallel guesses cannot slip past the lockout."""
    with connection.cursor() as cursor:
        for key in (f"login:account:{email}", f"login:ip:{ip}"):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def is_locked(*, user_id: int | None, ip: str) -> bool:
    """Whether the account (when known) or the IP has reached its failure limit."""
    return (
        user_id is not None and _recent_failures(user_id=user_id) >= settings.LOGIN_LOCKOUT_FAILURES
    ) or bool(ip and _recent_failures(ip=ip) >= settings.LOGIN_LOCKOUT_IP_FAILURES)


def _recent_failures(*, user_id: int | None = None, ip: str | None = None) -> int:
    """Failed sign-ins in the lockout window, since the account's last success."""
    minutes = settings.LOGIN_LOCKOUT_MINUTES
    with connection.cursor() as cursor:
        if user_id is not None:
            cursor.execute(
                "SELECT count(*) FROM audit_logs f WHERE f.user_id = %s"
                " AND f.event_type = 'login_failed'"
                " AND f.created_at > now() - make_interval(mins => %s)"
                " AND f.created_at > coalesce((SELECT max(s.created_at) FROM audit_logs s"
                "   WHERE s.user_id = %s AND s.event_type = 'login_succeeded'), '-infinity')",
                [user_id, minutes, user_id],
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM audit_logs WHERE ip = %s AND event_type = 'login_failed'"
                " AND created_at > now() - make_interval(mins => %s)",
                [ip, minutes],
            )
        return cursor.fetchone()[0]


def login_check(*, email: str, password: str, ip: str, user_agent: str = "") -> User | None:
    """Return the user when ``password`` is right and sign-in is allowed, else None.

    Writes ``login_failed`` (and ``login_locked`` when a limit is reached) audit rows. Must run
    inside the request's transaction.
    """
    email = normalize_email(email)
    with rls.service_context():
        lock_attempts(email=email, ip=ip)
        user = User.objects.filter(email=email, deleted_at__isnull=True).first()
        locked = is_locked(user_id=getattr(user, "pk", None), ip=ip)
        if user is None:
            make_password(password)  # the same work as a real check: no timing difference
            correct = False
        else:
            correct = user.check_password(password)  # upgrades an old hash to Argon2id
        details = {"email": email, "ip_locked": bool(locked and user is None)}
        if locked:
            audit.audit_event(
                audit.LOGIN_LOCKED,
                user_id=getattr(user, "pk", None),
                details=details,
                user_agent=user_agent,
            )
            return None
        if not correct or not user.is_active:
            audit.audit_event(
                audit.LOGIN_FAILED,
                user_id=getattr(user, "pk", None),
                details=details,
                user_agent=user_agent,
            )
            return None
        return user


def login_complete(request, user: User, *, method: str = "password") -> None:
    """Start the user's session (last login, device details) and audit the sign-in."""
    with rls.service_context(actor=user):
        django_login(request, user, backend=BACKEND)
        request.session.save()
        UserSession.objects.filter(session_key=request.session.session_key).update(
            user=user,
            ip=rls.client_ip(request) or None,
            user_agent=audit.clean_text(request.headers.get("User-Agent", ""), 300),
        )
        audit.audit_event(
            audit.LOGIN_SUCCEEDED,
            user_id=user.pk,
            details={"method": method},
            user_agent=request.headers.get("User-Agent", ""),
        )
