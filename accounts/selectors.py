"""Reads for account pages: plain data, under the caller's row-level security."""

from __future__ import annotations

from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.utils import timezone

from accounts import devices
from accounts.models import AccessToken, AuditLog, UserSession


def security_events(*, user_id: int, limit: int = 20) -> list[dict]:
    """The user's most recent audit events, newest first."""
    return list(
        AuditLog.objects.filter(user_id=user_id)
        .order_by("-created_at")
        .values("created_at", "event_type", "severity", "ip", "user_agent", "actor_id")[:limit]
    )


def security_sessions(
    *, user_id: int, current_session_key: str | None, limit: int = 20
) -> list[dict]:
    """The user's signed-in devices (unexpired sessions): this one first, then by last use.

    Each is ``created_at, last_seen_at, ip, user_agent, ref, is_current``; ``ref`` is the
    session's non-secret reference (accounts.devices): the key itself is never read out.
    """
    return list(
        UserSession.objects.filter(user_id=user_id, expire_date__gt=timezone.now())
        .annotate(
            ref=devices.SessionRef("session_key"),
            is_current=ExpressionWrapper(
                Q(session_key=current_session_key or ""), output_field=BooleanField()
            ),
        )
        .order_by("-is_current", "-last_seen_at")
        .values("created_at", "last_seen_at", "ip", "user_agent", "ref", "is_current")[:limit]
    )


def security_tokens(*, user_id: int, limit: int = 50) -> list[dict]:
    """The user's access tokens: active ones first, newest first; never their hash.

    Each is ``id, name, prefix, scopes, created_at, expires_at, last_used_at, last_used_ip,
    revoked_at, status`` with status ``active``, ``expired`` or ``revoked``.
    """
    now = timezone.now()
    tokens = list(
        AccessToken.objects.filter(user_id=user_id)
        .order_by(F("revoked_at").desc(nulls_first=True), "-created_at", "-id")
        .values(
            "id",
            "name",
            "prefix",
            "scopes",
            "created_at",
            "expires_at",
            "last_used_at",
            "last_used_ip",
            "revoked_at",
        )[:limit]
    )
    for token in tokens:
        if token["revoked_at"] is not None:
            token["status"] = "revoked"
        elif token["expires_at"] <= now:
            token["status"] = "expired"
        else:
            token["status"] = "active"
    return tokens


def security_overview(*, user_id: int, current_session_key: str | None) -> dict:
    """Everything ``/me/security/`` lists, each list bounded: ``events`` (20), ``sessions``
    (20) and ``tokens`` (50)."""
    return {
        "events": security_events(user_id=user_id, limit=20),
        "sessions": security_sessions(
            user_id=user_id, current_session_key=current_session_key, limit=20
        ),
        "tokens": security_tokens(user_id=user_id, limit=50),
    }
