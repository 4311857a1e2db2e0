"""Work that happens after the response: mails, and the writes behind them, as queued jobs.

A page that mails (or issues a token) must answer as fast as one that does not, or its timing
tells whether an address has an account. So the work is a named job of the queue
(witchcraft/tasks.py): :func:`after_commit` hands it to a small thread once the transaction
commits, and that thread writes the job into procrastinate's table (as the owner role: the
runtime role has no grant on the queue); the worker runs it, retrying a failure. A job's
arguments are stored in the database: they never hold a secret (a reset link's token is
made by the job itself).

With ``MAIL_IN_BACKGROUND`` off (tests) the job's function runs at once, in the caller's
transaction, and its failure is the caller's.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from witchcraft.platform import rls

logger = logging.getLogger(__name__)

# The jobs deferred after a commit (witchcraft/tasks.py defines them under these names).
SEND_MAIL = "send_mail"
MAIL_EMAIL_VERIFICATION = "mail_email_verification"
MAIL_PASSWORD_RESET = "mail_password_reset"  # noqa: S105 - a job name
MAIL_QUOTA_ALERTS = "mail_quota_alerts"

_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deferred")


def _app():
    from procrastinate.contrib.django import app  # ready once Django's apps are

    return app


def _defer(task_name: str, kwargs: dict[str, Any]) -> None:
    """Write the job (in the pool's thread). The thread keeps its connection from one job to the
    next, so a job costs one INSERT, no connection set-up competing with the next request; a
    connection that broke meanwhile (a database restart) is replaced, once."""
    for attempt in (1, 2):
        try:
            _app().configure_task(task_name, allow_unknown=False).defer(**kwargs)
            return
        except Exception:  # the page has answered already: the failure is logged
            broken = connection.connection is not None and not connection.is_usable()
            if attempt == 1 and broken:
                connection.close()
                continue
            logger.exception("could not queue the job %s", task_name)
            return


def after_commit(task_name: str, **kwargs: Any) -> None:
    """Queue the job ``task_name`` with ``kwargs`` (JSON values, no secret) once the current
    transaction commits, off the request thread; or run it now when MAIL_IN_BACKGROUND is off.
    """
    if not settings.MAIL_IN_BACKGROUND:
        _app().tasks[task_name](**kwargs)
        return
    transaction.on_commit(lambda: _pool.submit(_defer, task_name, kwargs))


def origin() -> dict[str, Any]:
    """The request's id and actor (a staff member impersonating), for a job that writes audit
    rows, so they still say where they came from."""
    identity = rls.current_identity()
    actor = identity.get("app.actor_id", "")
    return {
        "request_id": identity.get("app.request_id", ""),
        "actor_id": int(actor) if actor else None,
    }


def wait() -> None:
    """Return once every job handed over so far has been written to the queue (tests)."""
    _pool.submit(lambda: None).result()  # one thread: it comes after them


def drain() -> None:
    """Wait until every job handed over has been written to the queue, and close the thread's
    connection (benchmarks, tests: a test database cannot be dropped while it is open)."""
    global _pool
    _pool.submit(lambda: connection.close()).result()  # in the (one) thread that holds it
    _pool.shutdown(wait=True)
    _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deferred")
