"""Time every request and count its database queries, labelled by route (not path)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from witchcraft.operations.metrics import instruments


class _QueryTimer:
    """A ``connection.execute_wrapper``: counts the request's queries and their time."""

    __slots__ = ("count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1


def route_of(request) -> str:
    """The URL pattern's name (``agents:me_session``), its pattern when it has no name, or
    ``static`` / ``unmatched`` for requests no pattern answered."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or instruments.UNMATCHED_ROUTE
    static_url = "/" + settings.STATIC_URL.lstrip("/")
    if request.path.startswith(static_url):
        return instruments.STATIC_ROUTE
    return instruments.UNMATCHED_ROUTE


def method_of(request) -> str:
    method = request.method or ""
    return method if method in instruments.METHODS else instruments.OTHER_METHOD


class MetricsMiddleware:
    """First in MIDDLEWARE: its time includes every other middleware (the HTTPS redirect,
    authentication, the row-level-security transaction and its commit). A streamed response
    (the account export) is measured up to its first byte: what it sends later, and the queries
    that produce it, are not counted."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timer = _QueryTimer()
        started = time.perf_counter()
        try:
            with connection.execute_wrapper(timer):
                response = self.get_response(request)
        except BaseException:
            # Exceptions become responses inside; one reaching here is a server error.
            self._observe(request, 500, time.perf_counter() - started, timer)
            raise
        self._observe(request, response.status_code, time.perf_counter() - started, timer)
        return response

    @staticmethod
    def _observe(request, status: int, seconds: float, timer: _QueryTimer) -> None:
        method, route, status_class = method_of(request), route_of(request), f"{status // 100}xx"
        instruments.REQUESTS.labels(method, route, status_class).inc()
        instruments.REQUEST_SECONDS.labels(method, route, status_class).observe(seconds)
        instruments.DB_QUERIES.labels(route).observe(timer.count)
        instruments.DB_SECONDS.labels(route).observe(timer.seconds)
