"""Reads for account pages: plain data, under the caller's row-level security."""

from __future__ import annotations

from accounts.models import AuditLog


def security_events(*, user_id: int, limit: int = 20) -> list[dict]:
    """The user's most recent audit events, newest first."""
    return list(
        AuditLog.objects.filter(user_id=user_id)
        .order_by("-created_at")
        .values("created_at", "event_type", "severity", "ip", "user_agent", "actor_id")[:limit]
    )
