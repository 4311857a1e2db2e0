"""Work that happens after the response: mails, and the writes behind them.

A page that mails (or issues a token) must answer as fast as one that does not, or its timing
tells whether an address has an account. So that work runs after the transaction commits, on
a small thread pool (the job queue takes this over later). With ``MAIL_IN_BACKGROUND`` off
(tests) it runs at once, in the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connections, transaction

from witchcraft import rls

logger = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="deferred")


def _run(work: Callable[[], None], identity: dict[str, str]) -> None:
    close_old_connections()
    try:
        if identity.get("app.request_id") or identity.get("app.actor_id"):
            # Carry the request's id, client IP and actor (an impersonating staff member) over,
            # so audit rows written by the work still say where they came from.
            with (
                transaction.atomic(),
                rls.service_context(
                    actor=int(identity["app.actor_id"]) if identity.get("app.actor_id") else None,
                    request_id=identity.get("app.request_id", ""),
                    ip=identity.get("app.ip", ""),
                ),
            ):
                work()
        else:
            work()
    except Exception:  # a failure here must not reach a page; it is logged
        logger.exception("deferred work %s failed", getattr(work, "__name__", work))
    finally:
        connections.close_all()


def after_response(work: Callable[[], None]) -> None:
    """Run ``work`` once the current transaction commits, off the request thread."""
    if not settings.MAIL_IN_BACKGROUND:
        work()
        return
    identity = rls.current_identity()
    transaction.on_commit(lambda: _pool.submit(_run, work, identity))


def drain() -> None:
    """Wait until every submitted piece of work has finished (benchmarks, shutdown)."""
    global _pool
    _pool.shutdown(wait=True)
    _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="deferred")
