"""The API's per-plan rate limit: the plan sets how many requests a minute an account makes.

It lives with billing, which knows the plans; the API root (witchcraft/api.py) installs it, so
accounts (identity, below billing) needs nothing of plans."""

from __future__ import annotations

from django.conf import settings
from ninja.throttling import BaseThrottle

from billing.selectors import requests_per_minute
from witchcraft.platform.ratelimit import count_in_window


class TierRateThrottle(BaseThrottle):
    """Requests per minute per account, from the user's plan (``requests_per_minute``): one
    counter for all of the account's tokens and the service requests made for it."""

    def allow_request(self, request) -> bool:
        if (
            getattr(request, "access_token", None) is None
            and getattr(request, "service_credential", None) is None
        ):
            return True
        user_id = request.user.pk
        limit = requests_per_minute(user_id=user_id)
        count, self._wait = count_in_window(f"api:user:{user_id}", 60)
        return count <= limit or not settings.API_RATE_LIMITS

    def wait(self) -> int:
        return max(1, getattr(self, "_wait", 1))
