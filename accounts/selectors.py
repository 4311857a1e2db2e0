"""Reads for account pages: plain data, under the caller's row-level security."""

from __future__ import annotations

import functools
import operator
from datetime import datetime

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Greatest, TruncMinute
from django.utils import timezone

from accounts import audit, devices
from accounts.emails import normalize_email
from accounts.models import AccessToken, AuditLog, User, UserSession


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


# What may be shown of an access token: never its hash.
TOKEN_FIELDS = (
    "id",
    "name",
    "prefix",
    "scopes",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "revoked_at",
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
        .values(*TOKEN_FIELDS)[:limit]
    )
    for token in tokens:
        if token["revoked_at"] is not None:
            token["status"] = "revoked"
        elif token["expires_at"] <= now:
            token["status"] = "expired"
        else:
            token["status"] = "active"
    return tokens


# --- Staff dashboard: the audit trail ------------------------------------------------------

# A failed sign-in spike: more than this many ``login_failed`` rows in one minute (the seed's
# "Failed login spike (>10/min)" alert).
FAILED_LOGIN_SPIKE_PER_MINUTE = 10


def audit_trail(
    *,
    event_type: str = "",
    severity: str = "",
    user_id: int | None = None,
    user_email: str = "",
    actor_email: str = "",
    ip: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """Audit rows matching every filter given, newest first (``user`` and ``actor`` loaded).

    A queryset: callers page it or cap it. The time range is ``since <= created_at < until``.
    """
    rows = AuditLog.objects.select_related("user", "actor").order_by("-created_at", "-id")
    if event_type:
        rows = rows.filter(event_type=event_type)
    if severity:
        rows = rows.filter(severity=severity)
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    if user_email:
        rows = rows.filter(user__email=normalize_email(user_email))
    if actor_email:
        rows = rows.filter(actor__email=normalize_email(actor_email))
    if ip:
        rows = rows.filter(ip=ip)
    if since:
        rows = rows.filter(created_at__gte=since)
    if until:
        rows = rows.filter(created_at__lt=until)
    return rows


def failed_login_spikes(*, since: datetime, until: datetime, limit: int = 100) -> list[dict]:
    """Minutes in ``[since, until)`` with more than FAILED_LOGIN_SPIKE_PER_MINUTE failed
    sign-ins, newest first: ``[{"minute": datetime, "failures": int}]``.

    ``login_failed`` is a warning, so idx_audit_logs_security serves the time range.
    """
    return list(
        AuditLog.objects.filter(
            event_type=audit.LOGIN_FAILED,
            severity__in=["warning", "critical"],
            created_at__gte=since,
            created_at__lt=until,
        )
        .annotate(minute=TruncMinute("created_at"))
        .values("minute")
        .annotate(failures=Count("id"))
        .filter(failures__gt=FAILED_LOGIN_SPIKE_PER_MINUTE)
        .order_by("-minute")[:limit]
    )


# --- Staff dashboard: users named in a search ----------------------------------------------


def user_brief(*, user_id: int | None = None, email: str = "") -> User | None:
    """The user with this id (when given), else with this email address, with only ``id``
    and ``email`` loaded; None when there is no such user."""
    users = (
        User.objects.filter(pk=user_id) if user_id is not None else User.objects.filter(email=email)
    )
    return users.only("id", "email").first()


def user_emails(*, user_ids: set[int]) -> dict[int, str]:
    """The email address of each of these users that exists: ``{id: email}``."""
    return dict(User.objects.filter(pk__in=user_ids).values_list("pk", "email"))


# --- Staff dashboard: the user directory ---------------------------------------------------

# A user's status in the directory, in the order the directory sorts them.
DIRECTORY_STATUSES = ("active", "unverified", "staff", "deactivated")


def users_directory(*, text: str = "", user_id: int | None = None):
    """Every user (a queryset, unordered), or those whose email or name contains ``text``
    (``users_search()``: its trigram indexes) or whose id is ``user_id``; annotated with
    ``status`` (an index into DIRECTORY_STATUSES: deactivated, else staff, else unverified
    email, else active) and ``last_active``: the latest of the last sign-in, the last request of
    a browser session and the last use of an access token (each read by its user's index)."""
    users = User.objects.all()
    matches = []
    if user_id is not None:
        matches.append(Q(pk=user_id))
    if text:
        matches.append(Q(pk__in=RawSQL("SELECT public.users_search(%s)", [text])))
    if matches:
        users = users.filter(functools.reduce(operator.or_, matches))
    latest_session = (
        UserSession.objects.filter(user_id=OuterRef("pk"))
        .order_by()
        .values("user_id")
        .annotate(latest=Max("last_seen_at"))
        .values("latest")
    )
    latest_token = (
        AccessToken.objects.filter(user_id=OuterRef("pk"))
        .order_by()
        .values("user_id")
        .annotate(latest=Max("last_used_at"))
        .values("latest")
    )
    rank = DIRECTORY_STATUSES.index
    return users.annotate(
        status=Case(
            When(is_active=False, then=Value(rank("deactivated"))),
            When(is_staff=True, then=Value(rank("staff"))),
            When(email_verified_at__isnull=True, then=Value(rank("unverified"))),
            default=Value(rank("active")),
            output_field=IntegerField(),
        ),
        last_active=Greatest(
            "last_login",
            Subquery(latest_session, output_field=DateTimeField()),
            Subquery(latest_token, output_field=DateTimeField()),
        ),
    )
