"""How long data stays live before daily maintenance archives it (the seed's "archive old data
(>1 year) to separate tables", "compress audit logs after 90 days"), read from the environment
by settings.py and passed to ``daily_maintenance()`` by witchcraft.operations.maintenance.

Every value is a whole number within its bounds; anything else refuses to start, in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Bound:
    """One retention setting: its default and the range it must lie in."""

    default: int
    low: int
    high: int
    unit: str


# name: (default, lowest, highest, unit). The lows keep maintenance from archiving what pages
# still read raw (the current and previous month's usage, the last day of audit events).
SETTINGS: dict[str, Bound] = {
    # Usage partitions whose whole month ended this many months ago move to the archive schema.
    "USAGE_ARCHIVE_AFTER_MONTHS": Bound(12, 2, 120, "months"),
    # At most this many partitions a run (0: none); the rest wait for the next night.
    "USAGE_ARCHIVE_PARTITIONS_PER_RUN": Bound(2, 0, 120, "partitions"),
    # Audit events whose whole UTC day is older than this are stored compressed.
    "AUDIT_COMPRESS_AFTER_DAYS": Bound(90, 1, 3650, "days"),
    # At most this many audit events compressed a run (0: none).
    "AUDIT_COMPRESS_ROWS_PER_RUN": Bound(50_000, 0, 5_000_000, "rows"),
}


def read(get: Callable[[str, int], int]) -> dict[str, int]:
    """The retention settings, each read with ``get(name, default)`` and checked; raises
    ImproperlyConfigured naming the first one out of its range."""
    values = {}
    for name, bound in SETTINGS.items():
        try:
            value = get(name, bound.default)
        except ValueError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ImproperlyConfigured(f"{name} must be a whole number of {bound.unit}.")
        if not bound.low <= value <= bound.high:
            raise ImproperlyConfigured(
                f"{name} must be between {bound.low} and {bound.high} ({bound.unit}), not {value}."
            )
        values[name] = value
    return values


def daily_maintenance_params() -> dict[str, int]:
    """The retention arguments of ``daily_maintenance(...)``, from the settings now."""
    return {
        "usage_archive_after_months": settings.USAGE_ARCHIVE_AFTER_MONTHS,
        "usage_partitions_per_run": settings.USAGE_ARCHIVE_PARTITIONS_PER_RUN,
        "audit_compress_after_days": settings.AUDIT_COMPRESS_AFTER_DAYS,
        "audit_rows_per_run": settings.AUDIT_COMPRESS_ROWS_PER_RUN,
    }
