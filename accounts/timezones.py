"""The signed-in user's time zone: every date on their pages is shown in it.

``UserTimezoneMiddleware`` activates the zone of the user's profile
(``django.utils.timezone.activate``) for the request, so templates and forms convert times to
it. The zone name is kept in the session next to the user's id, so pages do not read the profile
on every request: it is read once when the session has none (or has another user's, after an
impersonation starts or ends), refreshed when the profile is saved (``remember_timezone``) and
dropped at sign-in, so a new session starts from the profile.

Left in UTC: anonymous visitors, the JSON API (bearer tokens, ISO 8601 times in UTC, and no
session to keep anything in), and the staff areas, whose pages say their times are UTC.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import UserProfile

DEFAULT_TIMEZONE = "UTC"
# The session entry: [user id, zone name].
SESSION_KEY = "witchcraft_timezone"
# Paths whose times stay in UTC (see the module's docstring).
UTC_PATH_PREFIXES = ("/api/", "/admin/", "/dashboard/")


@cache
def available_timezones() -> frozenset[str]:
    """The IANA zone names this system knows (read from disk once)."""
    return frozenset(zoneinfo.available_timezones())


@cache
def timezone_choices() -> list[tuple[str, str]]:
    """``(name, label)`` pairs of every known zone, sorted, for a form's select."""
    return [(name, name.replace("_", " ")) for name in sorted(available_timezones())]


def zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone called ``name``, or None when it is not a known IANA zone name."""
    if not name or name not in available_timezones():
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def remember_timezone(request, name: str) -> None:
    """Keep ``name`` as the signed-in user's zone in their session (after a profile save)."""
    request.session[SESSION_KEY] = [request.user.pk, name]


def _stored(request) -> str | None:
    value = request.session.get(SESSION_KEY)
    if (
        isinstance(value, list)
        and len(value) == 2
        and value[0] == request.user.pk
        and isinstance(value[1], str)
    ):
        return value[1]
    return None


def _timezone_name(request) -> str | None:
    """The zone to show this request's pages in, or None for the default (UTC)."""
    if request.path.startswith(UTC_PATH_PREFIXES):
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return None
    name = _stored(request)
    if name is None:
        # Runs inside the request's row-level-security context: the user's own profile only.
        name = (
            UserProfile.objects.filter(user_id=user.pk).values_list("timezone", flat=True).first()
        ) or DEFAULT_TIMEZONE
        remember_timezone(request, name)
    return name


class UserTimezoneMiddleware:
    """Show the signed-in user's pages in their profile's time zone.

    Placed after RowLevelSecurityMiddleware (its one read of the profile runs in the request's
    context) and so after the session and authentication middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        active = zone(_timezone_name(request))
        if active is None:
            timezone.deactivate()
        else:
            timezone.activate(active)
        try:
            return self.get_response(request)
        finally:
            # The active zone is per thread: the next request on this thread starts from UTC.
            timezone.deactivate()


@receiver(user_logged_in, dispatch_uid="accounts.timezones.signed_in")
def _forget_on_sign_in(sender, request, user, **kwargs) -> None:
    """A new sign-in reads the zone from the profile again (it may have changed meanwhile)."""
    session = getattr(request, "session", None)
    if session is not None:
        session.pop(SESSION_KEY, None)
