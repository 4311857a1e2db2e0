"""The security trail: every event goes through ``write_audit_log`` (actor, IP and request id
come from the database context, so a caller cannot forge them)."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from django.db import connection

USER_CREATED = "user_created"
LOGIN_SUCCEEDED = "login_succeeded"
LOGIN_FAILED = "login_failed"
LOGIN_LOCKED = "login_locked"
LOGOUT = "logout"
TOKEN_CREATED = "token_created"
TOKEN_REVOKED = "token_revoked"
TOKEN_EXPIRED = "token_expired"
SESSION_REVOKED = "session_revoked"
PASSWORD_RESET_REQUESTED = "password_reset_requested"
PASSWORD_RESET_COMPLETED = "password_reset_completed"
PASSWORD_CHANGED = "password_changed"
EMAIL_VERIFIED = "email_verified"
VERIFICATION_SENT = "verification_sent"
STAFF_FLAG_CHANGED = "staff_flag_changed"
IMPERSONATION_STARTED = "impersonation_started"
IMPERSONATION_ENDED = "impersonation_ended"
IMPERSONATED_ACTION = "impersonated_action"
TWO_FACTOR_ENABLED = "two_factor_enabled"
TWO_FACTOR_DISABLED = "two_factor_disabled"
RECOVERY_CODE_USED = "recovery_code_used"
RECOVERY_CODES_REPLACED = "recovery_codes_replaced"
# Written by the SQL functions that issue and revoke them (accounts/sql/0011), as 'warning'.
SERVICE_CREDENTIAL_CREATED = "service_credential_created"
SERVICE_CREDENTIAL_REVOKED = "service_credential_revoked"

WARNING_EVENTS = {
    LOGIN_FAILED,
    LOGIN_LOCKED,
    PASSWORD_RESET_COMPLETED,
    PASSWORD_CHANGED,
    TWO_FACTOR_DISABLED,
    RECOVERY_CODE_USED,
    RECOVERY_CODES_REPLACED,
    IMPERSONATION_STARTED,
    IMPERSONATED_ACTION,
    STAFF_FLAG_CHANGED,
    TOKEN_REVOKED,
    SESSION_REVOKED,
    SERVICE_CREDENTIAL_CREATED,
    SERVICE_CREDENTIAL_REVOKED,
}
CRITICAL_EVENTS = {LOGIN_LOCKED}
# Keys whose values never reach the trail, whatever a caller passes.
SECRET_KEYS = {"password", "token", "raw_token", "secret", "code", "otp", "key", "session_key"}


def clean_text(value: str, limit: int = 500) -> str:
    """Return ``value`` with line breaks and control characters escaped (``\\x0a``), cut to
    ``limit``: user-supplied text can never start a forged line in a log or an export."""
    out = []
    for char in str(value)[:limit]:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\x{ord(char):02x}" if ord(char) < 256 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def clean_details(details: Any) -> Any:
    """Return ``details`` with strings cleaned and secret-looking keys dropped."""
    if isinstance(details, dict):
        return {
            clean_text(k, 64): clean_details(v)
            for k, v in details.items()
            if str(k).lower() not in SECRET_KEYS
        }
    if isinstance(details, list | tuple):
        return [clean_details(v) for v in details]
    if isinstance(details, str):
        return clean_text(details)
    return details


def severity_of(event: str) -> str:
    if event in CRITICAL_EVENTS:
        return "critical"
    return "warning" if event in WARNING_EVENTS else "info"


def audit_event(
    event: str,
    *,
    user_id: int | None = None,
    details: dict[str, Any] | None = None,
    user_agent: str = "",
    target_type: str = "",
    target_id: str | int = "",
    severity: str | None = None,
) -> int:
    """Write one audit row through ``write_audit_log``; return its id.

    Runs in the caller's row-level-security context: a user may record events about
    themselves, admins and the service context about anyone.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT write_audit_log(p_event_type => %s, p_user_id => %s::bigint,"
            " p_severity => %s, p_details => %s::jsonb, p_target_type => %s,"
            " p_target_id => %s, p_user_agent => %s)",
            [
                event,
                user_id,
                severity or severity_of(event),
                json.dumps(clean_details(details or {})),
                clean_text(target_type, 64),
                clean_text(str(target_id), 64),
                clean_text(user_agent, 300),
            ],
        )
        return cursor.fetchone()[0]


def request_user_agent(request) -> str:
    return request.headers.get("User-Agent", "") if request is not None else ""
