"""A length of time for people, the one format of every page and command: "45 s", "12 min",
"3.4 h", "2.5 days"; ``None`` is an em dash (templates: ``{{ seconds|duration }}``, from
witchcraft/templatetags/numbers.py)."""

from __future__ import annotations

MINUTE, HOUR, DAY = 60, 3600, 86400


def duration_text(seconds: float | None, *, unknown: str = "—") -> str:
    if seconds is None or seconds != seconds:  # None, NaN
        return unknown
    seconds = max(0.0, float(seconds))
    if seconds < 2 * MINUTE:
        return f"{seconds:.0f} s"
    if seconds < 2 * HOUR:
        return f"{seconds / MINUTE:.0f} min"
    if seconds < 2 * DAY:
        return f"{seconds / HOUR:.1f} h"
    return f"{seconds / DAY:.1f} days"
