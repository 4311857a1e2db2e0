"""When the database does not answer: a retryable 503, never a 500, and one log line per outage.

A request can meet a dead database anywhere: in the session or the user lookup, in the identity
middleware's ``SET LOCAL ROLE`` (witchcraft/platform/rls.py), in a view, or while the response saves
the session. Django turns an exception raised in any middleware into a 500 at that layer, before an
outer middleware could catch it, so the exception is recognised where Django reports it (the
``got_request_exception`` signal, inside the ``except`` block) and marked on the request;
:class:`DatabaseOutageMiddleware`, outermost but for the metrics, then swaps the 500 for:

- ``/api/...``: the API's JSON error shape, ``503 {"error": {"code": "database_unavailable"}}``;
- any other path: a plain 503 page that needs neither the database nor the signed-in user.

Both carry ``Retry-After``. The API's own catch-all (witchcraft/api.py) answers the same for
exceptions raised inside an operation. Only connection failures count (no server, a server
that went away or is shutting down or starting up, a pool with no connection to give, an
embedded server that cannot start); a query that fails on a live server is a bug and stays a 500.

No stale connection survives the outage: the request that failed marks its connection as
errored, Django closes it at the end of the request (``CONN_HEALTH_CHECKS`` also checks a
persistent connection before its first use in each request), and psycopg's pool checks a
connection before lending it (``check`` in settings.py).
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from django.core.signals import got_request_exception
from django.db import InterfaceError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from witchcraft.platform.embedded_db import EmbeddedServerError

logger = logging.getLogger("witchcraft.outage")

RETRY_AFTER_SECONDS = 5
CODE = "database_unavailable"
MESSAGE = "The database is not answering; nothing was changed. Try again shortly."
API_PREFIX = "/api/"
_MARK = "_witchcraft_database_unavailable"

# SQLSTATE class 08 (connection exception), and the server going down or not yet up.
_CONNECTION_CLASS = "08"
_SERVER_GOING = frozenset({"57P01", "57P02", "57P03"})  # admin/crash shutdown, cannot connect now


def _connection_failure(exc: BaseException) -> bool:
    import psycopg
    from psycopg_pool import PoolTimeout

    if isinstance(exc, EmbeddedServerError | InterfaceError | psycopg.InterfaceError | PoolTimeout):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate  # None: no server answered (refused, reset, closed)
        return state is None or state.startswith(_CONNECTION_CLASS) or state in _SERVER_GOING
    return False


def is_database_unavailable(exc: BaseException | None) -> bool:
    """True when ``exc``, or an error that caused it, says the database cannot be reached
    (Django wraps the driver's errors: the driver's is the ``__cause__``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if _connection_failure(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _OutageLog:
    """One warning when requests start failing for want of the database, one when it is back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def down(self, exc: BaseException) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        logger.warning("database unavailable: answering 503 until it is back (%s)", _kind(exc))

    def up(self) -> None:
        if self._since is None:
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            logger.warning("database back after %.1f s", time.monotonic() - since)


outage_log = _OutageLog()


def _kind(exc: BaseException) -> str:
    """The error's class only: the driver's text names hosts and socket paths."""
    return type(exc).__name__


def _note_request_exception(sender, request=None, **kwargs) -> None:
    exc = sys.exc_info()[1]
    if request is not None and is_database_unavailable(exc):
        setattr(request, _MARK, True)
        outage_log.down(exc)


got_request_exception.connect(_note_request_exception, dispatch_uid="witchcraft.platform.outage")


def api_unavailable_body() -> dict:
    return {"error": {"code": CODE, "message": MESSAGE}}


def unavailable_response(request) -> HttpResponse:
    """The 503 for ``request``: JSON for the API, a page that needs no database otherwise."""
    if request.path.startswith(API_PREFIX):
        response = JsonResponse(api_unavailable_body(), status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def mark_unavailable(request, exc: BaseException) -> None:
    """Called by the API's catch-all: this request met a dead database (for the log)."""
    setattr(request, _MARK, True)
    outage_log.down(exc)


class DatabaseOutageMiddleware:
    """Turn a 500 caused by an unreachable database into a 503 (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            response = self.get_response(request)
        except Exception as exc:  # only reached if a layer inside let it through
            if not is_database_unavailable(exc):
                raise
            mark_unavailable(request, exc)
            return unavailable_response(request)
        if getattr(request, _MARK, False):
            # 500: the exception Django turned into an answer. A 503 a view chose (/healthz,
            # the API's own) stays as it is.
            if response.status_code == 500:
                return unavailable_response(request)
            return response
        if response.status_code < 500:
            outage_log.up()
        return response


class OutageLogFilter(logging.Filter):
    """Keep the per-request tracebacks of an outage out of ``django.request``'s log: the
    middleware says it once (``witchcraft.platform.outage``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and is_database_unavailable(exc):
            return False
        request = getattr(record, "request", None)
        return not getattr(request, _MARK, False)
