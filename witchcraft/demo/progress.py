"""A progress bar for long commands, written to stderr.

On a terminal one line is redrawn in place (at most ten times a second): the phase, a bar, what
is done of the total, rows written and their rate. Elsewhere (a log file, ``make`` output, tests)
only one line per finished phase is written, so logs stay short.
"""

from __future__ import annotations

import time
from collections.abc import Callable

BAR_WIDTH = 24
REDRAW_SECONDS = 0.1


class Progress:
    """Phases of work, each with a total of units (users, steps) and a count of rows."""

    def __init__(self, write: Callable[[str], None], *, live: bool, clock=time.monotonic):
        self._write = write
        self.live = live
        self._clock = clock
        self.phase = ""
        self.unit = ""
        self.total = 0
        self.done = 0
        self.rows = 0
        self._started = 0.0
        self._drawn = 0.0
        self.timings: dict[str, float] = {}

    def start(self, phase: str, total: int = 0, unit: str = "") -> None:
        self.phase, self.total, self.unit = phase, total, unit
        self.done = 0
        self.rows = 0
        self._started = self._drawn = self._clock()
        if self.live:
            self._draw()

    def advance(self, units: int = 0, rows: int = 0) -> None:
        self.done += units
        self.rows += rows
        if self.live and self._clock() - self._drawn >= REDRAW_SECONDS:
            self._draw()

    def finish(self) -> float:
        """End the phase: its line is written for good; return its seconds."""
        seconds = self._clock() - self._started
        self.timings[self.phase] = self.timings.get(self.phase, 0.0) + seconds
        line = self._line(seconds, final=True)
        self._write(("\r" + line + "\x1b[K\n") if self.live else line + "\n")
        return seconds

    def note(self, text: str) -> None:
        """A line of its own (between phases)."""
        self._write(text + "\n")

    def _draw(self) -> None:
        self._drawn = self._clock()
        self._write("\r" + self._line(self._drawn - self._started, final=False) + "\x1b[K")

    def _line(self, seconds: float, *, final: bool) -> str:
        parts = [f"{self.phase:<22}"]
        if self.total:
            filled = min(BAR_WIDTH, BAR_WIDTH * self.done // self.total)
            parts.append("[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
            parts.append(f"{self.done:,}/{self.total:,} {self.unit}".rstrip())
        if self.rows:
            rate = self.rows / seconds if seconds > 0 else 0.0
            parts.append(f"{self.rows:,} rows  {rate:,.0f} rows/s")
        if final:
            parts.append(f"{seconds:.1f} s")
        return "  ".join(parts)
