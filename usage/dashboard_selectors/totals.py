"""Summed roll-up counters: the sums every page asks of a roll-up and the Totals they make."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet, Sum

_SUMS = {
    "requests": Sum("request_count"),
    "errors": Sum("error_count"),
    "tokens": Sum("total_tokens"),
    "cost": Sum("cost"),
    "latency_sum": Sum("latency_ms_sum"),
    "latency_count": Sum("latency_count"),
}


@dataclass(frozen=True)
class Totals:
    """Summed roll-up counters."""

    requests: int = 0
    errors: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_sum: int = 0
    latency_count: int = 0
    users: int = 0

    @property
    def average_latency_ms(self) -> int | None:
        return round(self.latency_sum / self.latency_count) if self.latency_count else None

    @property
    def error_rate(self) -> float | None:
        """Percentage of requests that did not succeed; None without requests."""
        return 100 * self.errors / self.requests if self.requests else None


def _totals(row: dict, *, users: int = 0) -> Totals:
    return Totals(
        requests=row.get("requests") or 0,
        errors=row.get("errors") or 0,
        tokens=row.get("tokens") or 0,
        cost=row.get("cost") or Decimal(0),
        latency_sum=row.get("latency_sum") or 0,
        latency_count=row.get("latency_count") or 0,
        users=users if users else row.get("users") or 0,
    )


def _summed(rows: QuerySet, *keys: str) -> list[dict]:
    """The counters of ``rows`` summed by ``keys``, in no order."""
    return list(rows.values(*keys).annotate(**_SUMS).order_by())
