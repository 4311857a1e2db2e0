"""Two-factor sign-in (TOTP with django-otp, plus recovery codes): enrolment, the second sign-in
step, and the staff rule (``STAFF_2FA_REQUIRED``).

Device rows are under row-level security (accounts/sql/0006): the owner reads and writes their
own devices, admins and the service context only read and delete them. So:

- signed-in users manage their devices in the request's own context;
- the second sign-in step runs before the session is signed in: the lockout check and its
  audit rows run in the service context (as ``accounts.login`` does), and the code itself is
  checked as the owner (``user_id`` set, no admin rights), because consuming a code writes the
  device (TOTP replay counter, throttling) and deletes the used recovery code, which the
  policies allow the owner only. The policies are not loosened for it.

Recovery codes are shown once and stored only where django-otp keeps them (its static tokens,
readable by the owner); they are never logged or audited.
"""

from __future__ import annotations

import re
import secrets
import time
from base64 import b32encode
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import audit, login
from accounts.models import User
from witchcraft.platform import db_errors, rls

# The pending sign-in (password right, second factor owed), kept in the session. The user id and
# the next URL are written by accounts.views.auth.login_view.
PENDING_USER = "pending_2fa_user_id"
PENDING_NEXT = "pending_2fa_next"
PENDING_SINCE = "pending_2fa_since"
PENDING_TTL_SECONDS = 5 * 60

METHOD_TOTP = "totp"
METHOD_RECOVERY = "recovery_code"
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "recovery"
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 10  # base32 characters: 50 bits each
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_TOTP_CODE = re.compile(r"\d{6}|\d{8}")

# An audit event of this module only (no other flow replaces recovery codes).

# A wrong code and a paused sign-in read the same, as on the password step.
CODE_INVALID = "That code is not right, or sign-in is paused. Please try again."
SETUP_CODE_INVALID = "That code is not right. Check the time on your phone and try again."
PASSWORD_WRONG = "That is not your current password."  # noqa: S105 - a message
STAFF_MUST_KEEP = "Staff accounts must keep two-factor sign-in on."
NOT_WHILE_IMPERSONATING = "Two-factor settings cannot be changed while impersonating a user."
STAFF_NEEDS_2FA = "Staff accounts need two-factor sign-in to open this page."
CONFIRM_WITH_CODE = "Please confirm it is you with a code from your authenticator app."


class TwoFactorRefused(db_errors.Refused):
    """A two-factor change that is not allowed: ``code`` is ``invalid`` (a wrong code, field
    ``code``), ``conflict`` (two-factor sign-in is not in the state the change needs) or
    ``forbidden`` (staff must keep it); ``message`` is one of the constants above."""


# --- reads --------------------------------------------------------------------------------


def requires_second_factor(user) -> bool:
    """Return True when the user has a confirmed authenticator app."""
    with rls.service_context():
        return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def two_factor_enabled(*, user) -> bool:
    """Return True when ``user`` has a confirmed authenticator app (caller's context)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def recovery_codes_left(*, user) -> int:
    """Return how many unused recovery codes ``user`` has (caller's context)."""
    return StaticToken.objects.filter(device__user=user, device__name=RECOVERY_DEVICE_NAME).count()


def totp_secret_base32(device: TOTPDevice) -> str:
    """Return the device's secret in base32, in groups of four, for typing into an app."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_qr_data_uri(device: TOTPDevice) -> str:
    """Return the device's ``otpauth://`` URL as a QR code in an SVG ``data:`` URI: the
    Content-Security-Policy allows images from ``data:`` and no other outside resource."""
    qr = segno.make(device.config_url, error="m", micro=False)
    return qr.svg_data_uri(scale=4, border=4, light="#fff")


def format_recovery_code(code: str) -> str:
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def _normalize(code: str) -> str:
    """Codes may be typed with spaces or dashes, in either case."""
    return re.sub(r"[\s-]", "", code or "").lower()


# --- enrolment and management (the signed-in user's own request context) -----------------


def totp_device_for_setup(*, user) -> TOTPDevice | None:
    """Return the user's unconfirmed authenticator device, creating it when there is none;
    None when two-factor sign-in is already on."""
    if two_factor_enabled(user=user):
        return None
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def recovery_codes_replace(*, user) -> list[str]:
    """Replace the user's recovery codes with new ones; return them (the only time they are
    readable outside the database: show them once)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = [
        "".join(secrets.choice(_BASE32) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return [format_recovery_code(code) for code in codes]


def two_factor_enable(*, user, code: str, user_agent: str = "") -> tuple[TOTPDevice, list[str]]:
    """Confirm the user's authenticator app with a ``code`` from it; return the device and the
    new recovery codes. Raises TwoFactorRefused(SETUP_CODE_INVALID) for a wrong code."""
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("pk")
            .first()
        )
        if device is None or two_factor_enabled(user=user):
            raise TwoFactorRefused(db_errors.INVALID, SETUP_CODE_INVALID, field="code")
        verified = device.verify_token(_normalize(code))
    if not verified:  # raised after the block, which keeps the failure's throttling count
        raise TwoFactorRefused(db_errors.INVALID, SETUP_CODE_INVALID, field="code")
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()  # a second, unused one
    codes = recovery_codes_replace(user=user)
    audit.audit_event(
        audit.TWO_FACTOR_ENABLED,
        user_id=user.pk,
        details={"method": METHOD_TOTP, "recovery_codes": len(codes)},
        user_agent=user_agent,
    )
    return device, codes


def two_factor_disable(*, user, user_agent: str = "") -> None:
    """Remove the user's authenticator app and recovery codes. Staff cannot while
    ``STAFF_2FA_REQUIRED`` is on (TwoFactorRefused(STAFF_MUST_KEEP))."""
    if user.is_staff and settings.STAFF_2FA_REQUIRED:
        raise TwoFactorRefused(db_errors.FORBIDDEN, STAFF_MUST_KEEP)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    audit.audit_event(audit.TWO_FACTOR_DISABLED, user_id=user.pk, user_agent=user_agent)


def recovery_codes_regenerate(*, user, user_agent: str = "") -> list[str]:
    """New recovery codes for a user with two-factor sign-in on (the old ones stop working);
    return them."""
    if not two_factor_enabled(user=user):
        raise TwoFactorRefused(db_errors.CONFLICT, SETUP_CODE_INVALID)
    codes = recovery_codes_replace(user=user)
    audit.audit_event(
        audit.RECOVERY_CODES_REPLACED,
        user_id=user.pk,
        details={"recovery_codes": len(codes)},
        user_agent=user_agent,
        severity="warning",
    )
    return codes


# --- the second sign-in step ---------------------------------------------------------------


def pending_stamp(request) -> None:
    """Start the pending sign-in's five-minute clock (called when the password was right)."""
    request.session[PENDING_SINCE] = int(time.time())


def pending_clear(request) -> None:
    for key in (PENDING_USER, PENDING_NEXT, PENDING_SINCE):
        request.session.pop(key, None)


def pending_user(request) -> User | None:
    """Return the user whose password was right and who owes the second factor; None when there
    is no such sign-in, or it has expired (then it is cleared)."""
    user_id = request.session.get(PENDING_USER)
    if user_id is None:
        return None
    # A pending sign-in stamped by no one (an older session) starts its clock now.
    since = request.session.setdefault(PENDING_SINCE, int(time.time()))
    if not isinstance(since, int) or time.time() - since > PENDING_TTL_SECONDS:
        pending_clear(request)
        return None
    with rls.service_context():
        user = User.objects.filter(pk=user_id, is_active=True, deleted_at__isnull=True).first()
    if user is None or not requires_second_factor(user):
        pending_clear(request)
        return None
    return user


def _owner_context(request, user):
    """The database identity of ``user`` acting on their own rows (no admin rights), for the
    step before the session is signed in."""
    return rls.identity_context(
        rls.Identity(
            user_id=user.pk,
            request_id=getattr(request, "request_id", ""),
            ip=rls.client_ip(request),
        )
    )


def _verify_as_owner(user, code: str):
    """Return (the device that accepted ``code`` or None, the method tried). Six or eight digits
    are an authenticator code, anything else a recovery code. Must run as the owner."""
    code = _normalize(code)
    if _TOTP_CODE.fullmatch(code):
        method = METHOD_TOTP
        devices = TOTPDevice.objects.filter(user=user, confirmed=True)
    else:
        method = METHOD_RECOVERY
        devices = StaticDevice.objects.filter(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    # The row lock serialises two requests with the same code: the second one finds it used.
    device = devices.select_for_update().order_by("pk").first()
    if device is None or not code or not device.verify_token(code):
        return None, method
    return device, method


def second_factor_check(request, *, user, code: str):
    """Check the second factor of ``user`` (whose password is already checked); return
    ``(device, method)`` when ``code`` is right, else None.

    Refusals count like wrong passwords: a ``login_failed`` row with ``{"step":
    "second_factor"}``, so the account and IP lockouts of accounts.login apply to both steps;
    while locked, even a right code is refused. A recovery code is consumed and audited.
    """
    ip = rls.client_ip(request)
    user_agent = request.headers.get("User-Agent", "")
    details = {"step": "second_factor"}
    with rls.service_context():
        # The same locks as the password step: parallel guesses cannot pass the lockout.
        login.lock_attempts(email=user.email, ip=ip)
        if login.is_locked(user_id=user.pk, ip=ip):
            audit.audit_event(
                audit.LOGIN_LOCKED, user_id=user.pk, details=details, user_agent=user_agent
            )
            return None
    with _owner_context(request, user):
        device, method = _verify_as_owner(user, code)
        left = recovery_codes_left(user=user) if device and method == METHOD_RECOVERY else None
    if device is None:
        with rls.service_context():
            audit.audit_event(
                audit.LOGIN_FAILED,
                user_id=user.pk,
                details={**details, "method": method},
                user_agent=user_agent,
            )
        return None
    if method == METHOD_RECOVERY:
        with rls.service_context(actor=user):
            audit.audit_event(
                audit.RECOVERY_CODE_USED,
                user_id=user.pk,
                details={"recovery_codes_left": left},
                user_agent=user_agent,
            )
    return device, method


# --- the staff rule ------------------------------------------------------------------------


class StaffSecondFactorMiddleware:
    """With ``STAFF_2FA_REQUIRED``, a signed-in staff member whose session has not passed a
    second factor cannot open the staff areas (the admin, the dashboard): they are sent to set
    up an authenticator app, or to confirm a code from the one they have.

    Placed after MessageMiddleware: it needs ``request.user`` with ``is_verified()``
    (AuthenticationMiddleware, OTPMiddleware), the user django-hijack resolved, the request's
    row-level-security context for its one query, and messages to say why.
    """

    STAFF_AREAS = ("/admin/", "/dashboard/")
    # The admin's sign-in page already sends everyone to the site's own; signing out is allowed.
    EXEMPT = ("/admin/login/", "/admin/logout/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.STAFF_2FA_REQUIRED and self._guarded(request.path_info):
            user = request.user
            verified = getattr(user, "is_verified", None)
            if user.is_authenticated and user.is_staff and not (verified and verified()):
                return self._refuse(request, user)
        return self.get_response(request)

    def _guarded(self, path: str) -> bool:
        return path.startswith(self.STAFF_AREAS) and not path.startswith(self.EXEMPT)

    @staticmethod
    def _refuse(request, user):
        if two_factor_enabled(user=user):
            target, message = "accounts:login_2fa", CONFIRM_WITH_CODE
        else:
            target, message = "accounts:two_factor_setup", STAFF_NEEDS_2FA
        messages.warning(request, message)
        query = urlencode({"next": request.get_full_path()})
        return redirect(f"{reverse(target)}?{query}")
