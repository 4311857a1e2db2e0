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

logger = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="deferred")


def _run(work: Callable[[], None]) -> None:
    close_old_connections()
    try:
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
    transaction.on_commit(lambda: _pool.submit(_run, work))


def drain() -> None:
    """Wait until every submitted piece of work has finished (benchmarks, shutdown)."""
    global _pool
    _pool.shutdown(wait=True)
    _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="deferred")
