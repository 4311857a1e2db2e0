"""Bearer-token authentication for the JSON API.

API requests authenticate with ``Authorization: Bearer <token>`` only, never with the session
cookie (no CSRF exposure). The lookup happens in middleware, before the row-level-security
middleware opens the request's context, so the whole API call runs as the token's user.
"""

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from ninja.throttling import BaseThrottle

from accounts import tokens
from witchcraft.ratelimit import count_in_window
from witchcraft.rls import client_ip

API_PREFIX = "/api/"


class BearerTokenMiddleware:
    """Give API requests the user of their bearer token (or nobody)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            request.user = AnonymousUser()
            request.rls_actor = None  # an impersonation lives in a browser session, not here
            request.access_token = None
            scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and raw.strip():
                found = tokens.token_authenticate(
                    raw_token=raw.strip()[:200], ip=client_ip(request)
                )
                if found is not None:
                    request.user, request.access_token = found
        return self.get_response(request)


def token_required(request):
    """Ninja auth: the token's user, or None (answered 401)."""
    return request.user if getattr(request, "access_token", None) is not None else None


class TierRateThrottle(BaseThrottle):
    """Requests per minute per token, from the user's plan (``requests_per_minute``)."""

    def allow_request(self, request) -> bool:
        token = getattr(request, "access_token", None)
        if token is None:
            return True
        from billing.selectors import requests_per_minute

        limit = requests_per_minute(user_id=request.user.pk)
        count, self._wait = count_in_window(f"api:{token.pk}", 60)
        return count <= limit or not settings.API_RATE_LIMITS

    def wait(self) -> int:
        return max(1, getattr(self, "_wait", 1))
