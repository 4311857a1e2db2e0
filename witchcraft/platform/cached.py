"""Data that every request reads and staff rarely change (the catalog: providers, models with
their prices, public plans), kept in the cache instead of read on each use.

A :class:`Snapshot` is built once by its ``build`` function and kept twice: in the shared cache
(Redis when ``REDIS_URL`` is set, each process's memory otherwise) for ``shared_seconds``, and
in this process for ``local_seconds`` (a shared-cache round trip per use would cost nearly what
the query did). :meth:`Snapshot.forget` drops both; the owning app calls it when a row changes
(``post_save``/``post_delete`` signals, and its own services). So a change shows at once in the
process that made it, within ``local_seconds`` elsewhere with a shared cache, and within
``shared_seconds`` without one.

What a snapshot holds must be the same for every caller: build it from explicit filters (active,
public), never from what the current identity happens to see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.core.cache import cache


class Snapshot[T]:
    def __init__(
        self,
        key: str,
        build: Callable[[], T],
        *,
        local_seconds: float = 5,
        shared_seconds: int = 60,
    ) -> None:
        self.key = f"snapshot:{key}"
        self.build = build
        self.local_seconds = local_seconds
        self.shared_seconds = shared_seconds
        self._lock = threading.Lock()
        self._local: tuple[float, T] | None = None

    def get(self) -> T:
        kept = self._local
        now = time.monotonic()
        if kept is not None and kept[0] > now:
            return kept[1]
        value = cache.get(self.key)
        if value is None:
            value = self.build()
            cache.set(self.key, value, self.shared_seconds)
        with self._lock:
            self._local = (now + self.local_seconds, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._local = None
        cache.delete(self.key)

    def forget_local(self) -> None:
        """This process's copy only (tests, after emptying the shared cache)."""
        with self._lock:
            self._local = None
