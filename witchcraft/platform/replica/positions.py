"""Where each user's latest write ended in the primary's WAL (read-your-writes).

After a request that wrote commits, the primary's WAL insert position is kept for its user in the
shared cache; a page of that user reads the replica only once the replica has replayed past it.
The stored value only grows (an atomic maximum in Redis; under a lock in a process's own memory),
so two requests of one user that finish in either order leave the later position. It lives
``POSITION_TTL_SECONDS``: by then a replica that had not replayed it lags past
``REPLICA_MAX_LAG_SECONDS`` and is not read at all.
"""

from __future__ import annotations

import threading

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

POSITION_TTL_SECONDS = 600
_KEY = "replica:written:{user_id}"
_local_lock = threading.Lock()
# KEYS[1]: the user's key; ARGV: the position, the lifetime. Keeps the larger position.
_KEEP_MAX = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def lsn_number(text: str) -> int:
    """A WAL position as PostgreSQL prints it (``16/B374D848``) as a number."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def remember(user_id: int, position: int) -> None:
    """Keep ``position`` as the user's latest write unless a later one is already kept."""
    key = _KEY.format(user_id=user_id)
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        client = backend._cache.get_client(full_key, write=True)
        client.eval(_KEEP_MAX, 1, full_key, position, POSITION_TTL_SECONDS)
        return
    with _local_lock:
        if position > (backend.get(key) or 0):
            backend.set(key, position, POSITION_TTL_SECONDS)


def written(user_id: int) -> int:
    """The user's latest write kept (0: none in the last ``POSITION_TTL_SECONDS``)."""
    return int(caches["default"].get(_KEY.format(user_id=user_id)) or 0)
