"""Rate limits per client IP, counted in the cache (Redis when REDIS_URL is set)."""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render

from witchcraft.platform.rls import client_ip

TOO_MANY = "Too many attempts. Please wait a little and try again."


def count_in_window(key: str, window: int) -> tuple[int, int]:
    """Count one event under ``key`` in the current fixed window of ``window`` seconds; return
    the count so far in this window and the seconds until it ends (at least 1)."""
    now = int(time.time())
    bucket = now // window
    cache_key = f"ratelimit:{key}:{bucket}"
    if hasattr(cache, "count"):  # witchcraft.operations.metrics.cache: one round trip
        count = cache.count(cache_key, timeout=window + 1)
    else:
        cache.add(cache_key, 0, timeout=window + 1)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.set(cache_key, 1, timeout=window + 1)
            count = 1
    return count, max(1, (bucket + 1) * window - now)


def hit(action: str, key: str) -> int | None:
    """Count one attempt of ``action`` by ``key``; return seconds to wait when over the limit,
    else None. Fixed windows of the configured length (settings.RATE_LIMITS)."""
    limit, window = settings.RATE_LIMITS[action]
    count, wait = count_in_window(f"{action}:{key}", window)
    return wait if count > limit else None


def rate_limited(action: str):
    """Limit POSTs to a view per client IP: over the limit answers 429 with Retry-After."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST":
                wait = hit(action, client_ip(request) or "unknown")
                if wait is not None:
                    response = render(request, "429.html", {"message": TOO_MANY}, status=429)
                    response["Retry-After"] = str(wait)
                    return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
