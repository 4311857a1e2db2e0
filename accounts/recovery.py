"""Email verification and password reset: single-use, expiring, hashed tokens sent by mail.

Both happen before (or without) a signed-in user, so they run in the service context. Links
are built from SITE_URL. Only the SHA-256 of a token is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import audit, devices, tokens
from accounts.emails import normalize_email
from accounts.models import EmailVerificationToken, PasswordResetToken, User
from witchcraft.platform import deferred, rls
from witchcraft.platform.mail import addressee, mail_deliver, mail_send, site_url

LINK_INVALID = "This link is invalid or has expired. Ask for a new one."


def new_token() -> tuple[str, str]:
    """Return a raw URL-safe token (256 bits from ``secrets``) and its SHA-256 hex digest."""
    raw = secrets.token_urlsafe(32)
    return raw, token_hash(raw)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# --- email verification ------------------------------------------------------------------------
def verification_send(*, user_id: int, ip: str = "") -> None:
    """Mail the user a link that confirms their current address (valid 48 hours), after the
    response: the ``mail_email_verification`` job (witchcraft.platform.deferred) carries the user id
    and makes the token itself."""
    deferred.after_commit(
        deferred.MAIL_EMAIL_VERIFICATION, user_id=user_id, ip=ip, **deferred.origin()
    )


def verification_issue(
    *, user_id: int, ip: str = "", request_id: str = "", actor_id: int | None = None
) -> None:
    """Make a verification token for the user's current address and mail its link (the job).

    The token, its audit row and the mail go together: a mail that fails rolls the token back
    and the job is retried. Nothing happens for an account that no longer exists.
    """
    with (
        transaction.atomic(),
        rls.service_context(actor=actor_id or user_id, ip=ip, request_id=request_id),
    ):
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            return
        raw, digest = new_token()
        EmailVerificationToken.objects.create(
            user=user,
            email=user.email,
            token_hash=digest,
            expires_at=timezone.now() + timedelta(hours=settings.EMAIL_VERIFICATION_TTL_HOURS),
            requested_ip=ip or None,
        )
        audit.audit_event(audit.VERIFICATION_SENT, user_id=user.pk)
        mail_deliver(
            to=user.email,
            subject="Confirm your email address",
            template="verify_email",
            context={
                "user": addressee(user),
                "link": site_url(reverse("accounts:verify", args=[raw])),
            },
        )


def verification_confirm(*, raw_token: str) -> int | None:
    """Use a verification token (``confirm_email``): mark the address verified; return the user
    id, or None when the token is unknown, used, expired or for an address the account no
    longer has."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT confirm_email(p_token_hash => %s)", [token_hash(raw_token)])
        user_id = cursor.fetchone()[0]
    if user_id is not None:
        with rls.service_context(actor=user_id):
            audit.audit_event(audit.EMAIL_VERIFIED, user_id=user_id)
    return user_id


# --- password reset --------------------------------------------------------------------------
def password_reset_request(*, email: str, ip: str = "") -> None:
    """Mail a reset link (valid 1 hour) when an active account has this address.

    The caller answers the same way whether or not it does, and as fast: the token and the mail
    are made after the response, by the ``mail_password_reset`` job (witchcraft.platform.deferred),
    which carries the user id, never a token.
    """
    email = normalize_email(email)
    with rls.service_context():
        user_id = (
            User.objects.filter(email=email, is_active=True, deleted_at__isnull=True)
            .values_list("pk", flat=True)
            .first()
        )
    if user_id is not None:
        deferred.after_commit(
            deferred.MAIL_PASSWORD_RESET, user_id=user_id, ip=ip, **deferred.origin()
        )


def password_reset_issue(
    *, user_id: int, ip: str = "", request_id: str = "", actor_id: int | None = None
) -> None:
    """Make a reset token and mail its link (the job). As for verification, the token, its
    audit row and the mail go together; an account closed meanwhile gets nothing."""
    raw, digest = new_token()
    with (
        transaction.atomic(),
        rls.service_context(actor=actor_id or user_id, ip=ip, request_id=request_id),
    ):
        user = User.objects.filter(pk=user_id, is_active=True, deleted_at__isnull=True).first()
        if user is None:
            return
        PasswordResetToken.objects.create(
            user=user,
            token_hash=digest,
            expires_at=timezone.now() + timedelta(minutes=settings.PASSWORD_RESET_TTL_MINUTES),
            requested_ip=ip or None,
        )
        audit.audit_event(audit.PASSWORD_RESET_REQUESTED, user_id=user.pk)
        link = site_url(reverse("accounts:password_reset_confirm", args=[raw]))
        mail_deliver(
            to=user.email,
            subject="Reset your password",
            template="password_reset",
            context={
                "user": addressee(user),
                "link": link,
                "minutes": settings.PASSWORD_RESET_TTL_MINUTES,
            },
        )


def password_reset_links_end(*, user_id: int) -> int:
    """End every still-valid reset link of the user (``end_password_reset_links``, for whoever
    may change that user's password); return how many. Runs in the caller's context."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT end_password_reset_links(p_user_id => %s)", [user_id])
        return cursor.fetchone()[0]


def password_reset_token_user(*, raw_token: str) -> User | None:
    """The user a still-valid reset token belongs to, or None."""
    with rls.service_context():
        token = (
            PasswordResetToken.objects.select_related("user")
            .filter(
                token_hash=token_hash(raw_token),
                used_at__isnull=True,
                expires_at__gt=timezone.now(),
                user__is_active=True,
            )
            .first()
        )
        return None if token is None else token.user


def password_reset_confirm(*, raw_token: str, password: str) -> User:
    """Set a new password with a reset token.

    The token is used up; every session of the user ends and their access tokens are revoked;
    a notice is mailed. Raises ValidationError (LINK_INVALID, or the password's faults).
    """
    now = timezone.now()
    with rls.service_context():
        token = (
            PasswordResetToken.objects.select_for_update()
            .select_related("user")
            .filter(
                token_hash=token_hash(raw_token),
                used_at__isnull=True,
                expires_at__gt=now,
                user__is_active=True,
            )
            .first()
        )
        if token is None:
            raise ValidationError(LINK_INVALID)
        user = token.user
        validate_password(password, user)
        token.used_at = now
        token.save(update_fields=["used_at"])
        User.objects.filter(pk=user.pk).update(password=make_password(password))
        # Any other outstanding reset link dies with this one.
        PasswordResetToken.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
        ended = devices.sessions_end(user_id=user.pk)
        revoked = tokens.tokens_revoke_all(user_id=user.pk)
        with rls.service_context(actor=user.pk):
            audit.audit_event(
                audit.PASSWORD_RESET_COMPLETED,
                user_id=user.pk,
                details={"sessions_ended": ended, "tokens_revoked": revoked},
            )
    mail_send(
        to=user.email,
        subject="Your password was changed",
        template="password_changed",
        context={
            "user": addressee(user),
            "reset_link": site_url(reverse("accounts:password_reset")),
        },
    )
    return user
