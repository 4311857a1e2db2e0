"""Cache backends that time their operations and count hits and misses.

Drop-in for Django's: ``witchcraft.operations.metrics.cache.RedisCache`` and
``witchcraft.operations.metrics.cache.LocMemCache`` in ``CACHES[...]["BACKEND"]``. An operation that
a backend implements by calling another (``get_or_set`` calls ``get`` and ``add``; the local
memory ``get_many`` calls ``get``) is counted once, as the outer one.
"""

from __future__ import annotations

import threading
import time
from functools import wraps

from django.core.cache.backends import locmem, redis

from witchcraft.operations.metrics import instruments

TIMED = (
    "add",
    "set",
    "touch",
    "delete",
    "get_many",
    "get_or_set",
    "has_key",
    "incr",
    "decr",
    "set_many",
    "delete_many",
    "clear",
)
_MISSING = object()
_depth = threading.local()


def _outermost(operation: str, call):
    """Run ``call()``; time it when no other timed operation of this thread is running."""
    if getattr(_depth, "value", 0):
        return call()
    _depth.value = 1
    started = time.perf_counter()
    try:
        return call()
    finally:
        _depth.value = 0
        instruments.CACHE_SECONDS.labels(operation).observe(time.perf_counter() - started)


def _timed(operation: str, method):
    @wraps(method)
    def timed(self, *args, **kwargs):
        return _outermost(operation, lambda: method(self, *args, **kwargs))

    return timed


def _counted_get(method):
    @wraps(method)
    def get(self, key, default=None, version=None):
        outer = not getattr(_depth, "value", 0)
        value = _outermost("get", lambda: method(self, key, _MISSING, version))
        if outer:
            instruments.CACHE_GETS.labels("miss" if value is _MISSING else "hit").inc()
        return default if value is _MISSING else value

    return get


def instrumented(backend: type) -> type:
    """A subclass of the cache ``backend`` whose operations are timed and gets counted."""
    namespace = {name: _timed(name, getattr(backend, name)) for name in TIMED}
    namespace["get"] = _counted_get(backend.get)
    namespace["__module__"] = __name__
    namespace["__doc__"] = f"{backend.__module__}.{backend.__qualname__}, measured."
    return type(backend.__name__, (backend,), namespace)


class _RedisCounting:
    def count(self, key, timeout: int, version=None) -> int:
        """Add 1 to the counter ``key`` (made at 0, expiring after ``timeout`` seconds, when
        missing); the new count. One round trip: SET NX EX and INCR in one pipeline (Django's
        add() then incr() cost three: SET NX, EXISTS, INCRBY)."""
        key = self.make_and_validate_key(key, version=version)

        def call():
            pipeline = self._cache.get_client(key, write=True).pipeline(transaction=False)
            pipeline.set(key, 0, ex=timeout, nx=True)
            pipeline.incr(key)
            return pipeline.execute()[1]

        return _outermost("count", call)


class _LocMemCounting:
    def count(self, key, timeout: int, version=None) -> int:
        """Add 1 to the counter ``key`` (made at 0, expiring after ``timeout`` seconds, when
        missing); the new count."""
        self.add(key, 0, timeout=timeout, version=version)
        try:
            return self.incr(key, version=version)
        except ValueError:  # expired in between
            self.set(key, 1, timeout=timeout, version=version)
            return 1


RedisCache = type("RedisCache", (_RedisCounting, instrumented(redis.RedisCache)), {})
LocMemCache = type("LocMemCache", (_LocMemCounting, instrumented(locmem.LocMemCache)), {})
