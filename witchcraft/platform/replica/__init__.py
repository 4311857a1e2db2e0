"""Analytics reads on a streaming replica (``DATABASE_REPLICA_URL``), chosen explicitly.

Nothing goes to the replica by default. A view hands the reads that are analytics (charts,
lists, exports, summaries) to :func:`read`; inside it the ORM's reads (:class:`AnalyticsRouter`)
and the selectors' own SQL (:func:`read_connection`, :func:`read_atomic`) use the replica, in a
read-only transaction that carries the request's identity, so row-level security applies there
exactly as on the primary. Everything else (writes, functions that may write, sign-in, quota
checks, recording) stays on the primary, and so does a read outside :func:`read`.

:func:`read` serves the primary instead when the replica is down, lags more than
``REPLICA_MAX_LAG_SECONDS``, or has not yet replayed the user's own latest write
(read-your-writes, :mod:`witchcraft.platform.replica.positions`); a query the replica cancels
(a recovery conflict) is run again on the primary.
"""

from witchcraft.platform.replica.reads import (
    ALIAS,
    PRIMARY,
    AnalyticsRouter,
    ReadFrom,
    configured,
    read,
    read_alias,
    read_atomic,
    read_connection,
    remember_write,
    wrote_in_transaction,
)
from witchcraft.platform.replica.state import ReplicaStatus, replica_status

__all__ = [
    "ALIAS",
    "PRIMARY",
    "AnalyticsRouter",
    "ReadFrom",
    "ReplicaStatus",
    "configured",
    "read",
    "read_alias",
    "read_atomic",
    "read_connection",
    "remember_write",
    "replica_status",
    "wrote_in_transaction",
]
