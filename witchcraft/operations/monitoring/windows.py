"""AI requests per status over the last 1, 5 and 60 minutes.

Read through ``monitoring_request_windows()`` (witchcraft/sql/0003_monitoring_windows.sql): one
range scan of the ``ai_usage_requests_created_status`` index over the last hour of the current
partition, grouped by status; the cost follows the last hour's traffic, never the table's size.

A request ended in one of the statuses of :class:`usage.models.UsageStatus`. ``error`` and
``timeout`` are *failed*; ``cancelled`` (the client stopped it) and ``rejected`` (refused by the
quota, never sent to a provider) are counted apart and are on neither side of the error rate:
``failed / (succeeded + failed)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from usage.models import UsageStatus

# (label, seconds): the windows monitoring_request_windows() counts, in its column order.
WINDOWS: tuple[tuple[str, int], ...] = (("1m", 60), ("5m", 300), ("60m", 3600))
FAILED = frozenset({UsageStatus.ERROR.value, UsageStatus.TIMEOUT.value})
# The window the "High error rate" alert reads (the page and the Prometheus rules file).
ALERT_WINDOW = "5m"


@dataclass(frozen=True)
class Window:
    """The requests of one window, by outcome."""

    name: str
    seconds: int
    by_status: dict[str, int]

    @property
    def succeeded(self) -> int:
        return self.by_status.get(UsageStatus.SUCCESS, 0)

    @property
    def failed(self) -> int:
        return sum(self.by_status.get(status, 0) for status in FAILED)

    @property
    def cancelled(self) -> int:
        return self.by_status.get(UsageStatus.CANCELLED, 0)

    @property
    def rejected(self) -> int:
        return self.by_status.get(UsageStatus.REJECTED, 0)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def requests_per_second(self) -> float:
        """Every request of the window, whatever its outcome, per second."""
        return self.total / self.seconds

    @property
    def error_rate(self) -> float:
        """failed / (succeeded + failed); 0.0 when neither happened."""
        finished = self.succeeded + self.failed
        return self.failed / finished if finished else 0.0


def request_windows(*, now: datetime) -> dict[str, Window]:
    """``{"1m": Window, "5m": Window, "60m": Window}`` for the minutes before ``now`` (rows at
    or after ``now`` are not counted). Staff or the service context (else a DatabaseError)."""
    with connection.cursor() as cursor:
        cursor.execute(  # SECURITY DEFINER: every user's rows, for staff only
            "SELECT out_status, out_last_1m, out_last_5m, out_last_60m"
            " FROM monitoring_request_windows(%s)",
            [now],
        )
        rows = cursor.fetchall()
    return {
        name: Window(
            name=name,
            seconds=seconds,
            by_status={status: counts[index] for status, *counts in rows if counts[index]},
        )
        for index, (name, seconds) in enumerate(WINDOWS)
    }
