"""The job worker, kept alive: through a database restart, and (``respawn``) through its own death.

procrastinate's worker stops for good when its database goes away (its heartbeat or its job
fetch fails, and it exits). :func:`run` runs it in a loop instead:

- while the database does not answer, it waits with backoff (1 s doubling to ``max_backoff``),
  saying so once; when the database answers again it says so once, and starts a new worker on a
  fresh connection (the embedded server's socket is read again). The new worker registers a new
  heartbeat, and its periodic deferrer defers the slot each schedule missed (a missed daily run
  happens today, once: witchcraft/tasks.py). Jobs the dead worker held are retried by
  ``retry_stalled_jobs``;
- any other crash is logged with its traceback and retried with the same backoff;
- SIGINT or SIGTERM stop it: a running worker finishes the jobs in hand first (procrastinate's
  own handling), a waiting loop stops at once.

:func:`respawn` (``manage.py worker --respawn``, what ``make run`` starts) runs the worker as a
child process and starts a new one when it dies (killed with -9, out of memory), passing SIGINT
and SIGTERM on to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from asgiref.sync import sync_to_async
from django.db import connection

from witchcraft.platform.outage import is_database_unavailable

logger = logging.getLogger("witchcraft.worker")

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
RESPAWN_DELAY_SECONDS = 2.0
HEALTHY_RUN_SECONDS = 60.0  # a worker that ran this long starts the backoff over
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _database_answers() -> bool:
    """One round trip on a fresh connection (an embedded server that is down is started)."""
    try:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception as exc:
        if is_database_unavailable(exc):
            return False
        raise
    finally:
        connection.close()


class _LostDatabaseFilter(logging.Filter):
    """Keeps procrastinate's tracebacks of a lost database (one per failed side task, naming
    the socket or host) out of the log, remembering that it happened: :func:`run` says it once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lost: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and is_database_unavailable(exc):
            self.lost = self.lost or type(exc).__name__
            return False
        return True


@contextlib.contextmanager
def _quiet_lost_database():
    """The filter on the root logger's handlers, which every record of this process reaches
    (procrastinate logs under loggers named after each worker)."""
    quiet = _LostDatabaseFilter()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield quiet
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


class _Backoff:
    def __init__(self, first: float, most: float) -> None:
        self.first, self.most, self.delay = first, most, first

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self.most)
        return delay

    def reset(self) -> None:
        self.delay = self.first


async def _sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event):
    """SIGINT and SIGTERM set ``stop`` for as long as the loop runs."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


class StoppedByItself(Exception):
    """procrastinate's worker returned without being asked to (a side task failed: it logged
    why)."""


async def _run_one_worker(options: dict, stop: asyncio.Event) -> None:
    """One procrastinate worker on a connector built now (fresh connection parameters), until
    ``stop`` is set (then it finishes the jobs in hand: cancelling its run is procrastinate's
    graceful stop) or it fails."""
    from procrastinate.contrib.django import app

    connector = app.connector.get_worker_connector()
    with app.replace_connector(connector) as worker_app:
        async with worker_app.open_async():
            running = asyncio.create_task(
                worker_app.run_worker_async(**options, install_signal_handlers=False)
            )
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                return
            stopping.cancel()
            running.result()  # its exception, if it raised one
            raise StoppedByItself


async def run(*, options: dict | None = None, max_backoff: float = MAX_BACKOFF_SECONDS) -> None:
    """Run workers until a stop signal (see the module's docstring)."""
    stop = asyncio.Event()
    backoff = _Backoff(FIRST_BACKOFF_SECONDS, max_backoff)
    lost_since: float | None = None

    def lost(reason: str) -> None:
        nonlocal lost_since
        if lost_since is None:
            lost_since = time.monotonic()
            logger.warning(
                "worker: lost the database (%s); reconnecting every %.0f to %.0f s",
                reason,
                backoff.first,
                backoff.most,
            )

    with _stop_on_signals(stop), _quiet_lost_database() as quiet:
        while not stop.is_set():
            if not await sync_to_async(_database_answers, thread_sensitive=True)():
                lost("not answering")
                await _sleep_unless_stopped(stop, backoff.next())
                continue
            if lost_since is not None:
                logger.warning(
                    "worker: the database is back after %.0f s; resuming the queues and schedules",
                    time.monotonic() - lost_since,
                )
                lost_since = None
                backoff.reset()
            started, quiet.lost = time.monotonic(), None
            try:
                await _run_one_worker(dict(options or {}), stop)
            except Exception as exc:
                if time.monotonic() - started > HEALTHY_RUN_SECONDS:
                    backoff.reset()
                if is_database_unavailable(exc) or quiet.lost:
                    lost(quiet.lost or type(exc).__name__)
                    continue  # the top of the loop waits for the database
                if not isinstance(exc, StoppedByItself):  # procrastinate logged that one
                    logger.exception("worker: stopped by an error; starting again")
                await _sleep_unless_stopped(stop, backoff.next())


# The project root is two floors up (witchcraft/operations/).
MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"


def respawn(argv: list[str], *, delay: float = RESPAWN_DELAY_SECONDS) -> int:
    """Run ``manage.py worker <argv>`` as a child and start it again whenever it dies, until
    this process gets SIGINT or SIGTERM (passed on to the child, which is then waited for)."""
    manage = MANAGE_PY
    stopping = False
    child: subprocess.Popen | None = None

    def _forward(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, _forward)
    while True:
        # Its own process group: a Ctrl-C in the terminal reaches this process only, which
        # passes it on once (procrastinate's worker stops at once on a second SIGINT).
        child = subprocess.Popen(  # noqa: S603
            [sys.executable, str(manage), "worker", *argv], process_group=0
        )
        status = child.wait()
        if stopping:
            return 0
        logger.warning("worker: exited with status %s; starting a new one", status)
        time.sleep(delay)
        if stopping:
            return 0
