"""Bulk loading: PostgreSQL's COPY text format, buffered per table, ids from the sequences.

Rows are encoded as COPY text lines by the generators (tab-separated, ``\\N`` for NULL, text
escaped with :func:`esc`) and appended to a :class:`Table`; a table whose buffer passes a few
megabytes is sent with one ``COPY ... FROM STDIN`` (psycopg 3 ``cursor.copy()``) by the
:class:`Loader`'s thread. Ids that rows of other tables point at are taken from the table's own
sequence in blocks (:class:`Ids`), so that rows inserted later the normal way never collide
with them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

NULL = "\\N"
# Flush a table's buffer to the server once it holds this many characters.
FLUSH_CHARS = 4_000_000
MAX_ID_BLOCK = 50_000  # ids taken from a sequence at a time (unused ones are a gap, no harm)

US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_DAY = 86_400 * US_PER_SECOND
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_TEXT: dict[int, str] = {}
_MINUTE_TEXT: dict[int, str] = {}  # "YYYY-MM-DD HH:MM:" of each minute met


def esc(value: str) -> str:
    """``value`` escaped for the COPY text format (backslash, line breaks, tabs)."""
    # Most values have none of these: four scans are much faster than str.translate.
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\n" in value:
        value = value.replace("\n", "\\n")
    if "\r" in value:
        value = value.replace("\r", "\\r")
    if "\t" in value:
        value = value.replace("\t", "\\t")
    return value


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def moment(us: int) -> datetime:
    """The aware UTC datetime of ``us`` microseconds since the epoch."""
    day, rest = divmod(us, US_PER_DAY)
    seconds, micro = divmod(rest, US_PER_SECOND)
    start = datetime.fromordinal(_EPOCH_ORDINAL + day).replace(tzinfo=UTC)
    return start + timedelta(seconds=seconds, microseconds=micro)


def day_text(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (days since the epoch)."""
    text = _DAY_TEXT.get(day)
    if text is None:
        text = _DAY_TEXT[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
    return text


# "SS.mmm" of each millisecond of a minute, and "uuu" of each microsecond of a millisecond:
# a timestamp is then put together from three strings (formatting each one is much slower).
_SECOND_TEXT = tuple(f"{ms // 1000:02d}.{ms % 1000:03d}" for ms in range(60_000))
_MICRO_TEXT = tuple(f"{us:03d}" for us in range(1000))


def ts(us: int) -> str:
    """A timestamptz literal (UTC) of ``us`` microseconds since the epoch."""
    minute = us // US_PER_MINUTE
    text = _MINUTE_TEXT.get(minute)
    if text is None:
        day, minutes = divmod(minute, 1440)
        text = _MINUTE_TEXT[minute] = f"{day_text(day)} {minutes // 60:02d}:{minutes % 60:02d}:"
    return text + _SECOND_TEXT[us // 1000 % 60_000] + _MICRO_TEXT[us % 1000] + "+00"


def opt_ts(us: int | None) -> str:
    return NULL if us is None else ts(us)


def money(micro_dollars: int) -> str:
    """A numeric literal of an amount in micro-dollars (exponent notation: the column's
    numeric(12,6) gives it its 6 decimal places)."""
    return f"{micro_dollars}e-6"


def boolean(value: bool) -> str:
    return "t" if value else "f"


def text_array(values) -> str:
    """A one-dimensional text[] literal of simple words (no quoting needed)."""
    return "{" + ",".join(values) + "}"


class Table:
    """The COPY buffer of one table: encoded lines and the columns they fill."""

    def __init__(self, name: str, columns: tuple[str, ...], target: str | None = None):
        self.name = name
        self.columns = columns
        # target: another table the rows go to first (a staging table), counted as ``name``.
        self.statement = f"COPY {target or 'public.' + name} ({', '.join(columns)}) FROM STDIN"
        self.lines: list[str] = []
        self.size = 0
        self.rows = 0  # every row ever added (sent or still buffered)

    def add(self, line: str) -> None:
        """Add one encoded row (its fields joined by tabs, without the line break)."""
        self.lines.append(line)
        self.size += len(line)
        self.rows += 1


class Loader:
    """The tables of one load, and a thread that does the server's part of the work.

    Generating rows (Python, one core) and storing them (the server, the other core) overlap:
    full buffers are handed to the sending thread, which runs their COPY on its own cursor of
    the same connection, and so are other jobs (:meth:`submit`), run in the order they came
    (psycopg serialises the connection's use: a query of the main thread waits for a COPY in
    progress). Use it as a context manager: leaving the block sends what is left and waits; an
    error of the sending thread is raised in the main one.
    """

    QUEUE_SIZE = 4  # jobs waiting: bounds the memory the buffers use

    def __init__(self, cursor):
        self.cursor = cursor
        self.tables: dict[str, Table] = {}
        self.seconds: dict[str, float] = {}  # server time per job kind ("COPY users", ...)
        self._queue: queue.Queue[tuple[str, Callable] | None] = queue.Queue(self.QUEUE_SIZE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="demo-load", daemon=True)
        self._thread.start()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush_all()
        self._queue.put(None)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error

    def table(self, name: str, columns: tuple[str, ...], *, target: str | None = None) -> Table:
        """The buffer of ``public.name``, or of ``target`` (rows counted as ``name``'s)."""
        key = target or name
        table = self.tables.get(key)
        if table is None:
            table = self.tables[key] = Table(name, columns, target)
        elif table.columns != columns:
            raise ValueError(f"{name}: one load fills one set of columns")
        return table

    def maybe_flush(self) -> None:
        """Hand every table whose buffer is full to the sending thread."""
        for table in self.tables.values():
            if table.size >= FLUSH_CHARS:
                self.flush(table)

    def flush_all(self) -> None:
        for table in self.tables.values():
            self.flush(table)

    def flush(self, table: Table) -> None:
        if not table.lines:
            return
        data = "\n".join(table.lines) + "\n"
        table.lines = []
        table.size = 0
        statement = table.statement

        def copy(cursor) -> None:
            with cursor.copy(statement) as copy:
                copy.write(data)

        self.submit(f"COPY {table.name}", copy)

    def submit(self, kind: str, job: Callable[[object], None]) -> None:
        """Run ``job(cursor)`` in the sending thread, after everything handed over before."""
        if self._error is not None:
            raise self._error
        self._queue.put((kind, job))

    def _work(self) -> None:
        cursor = self.cursor.connection.cursor()
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the main thread raises the error at its next hand-over
            kind, job = item
            started = time.monotonic()
            try:
                job(cursor)
            except BaseException as exc:  # handed over to the main thread
                self._error = exc
            self.seconds[kind] = self.seconds.get(kind, 0.0) + time.monotonic() - started

    @property
    def rows(self) -> int:
        """Rows added to every table so far."""
        return sum(table.rows for table in self.tables.values())

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for table in self.tables.values():
            counts[table.name] = counts.get(table.name, 0) + table.rows
        return counts


class Ids:
    """Ids of one table, taken from its sequence ``block`` at a time with ``nextval``."""

    def __init__(self, cursor, sequence: str, block: int = 10_000):
        self.cursor = cursor
        self.sequence = sequence
        self.block = block
        self._pending: list[int] = []

    @classmethod
    def of_column(cls, cursor, table: str, column: str = "id", block: int = 10_000) -> Ids:
        """The ids of ``table.column`` (a serial or identity column)."""
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [f"public.{table}", column])
        (sequence,) = cursor.fetchone()
        if sequence is None:
            raise LookupError(f"public.{table}.{column} has no sequence")
        return cls(cursor, sequence, block)

    def next(self) -> int:
        if not self._pending:
            self.cursor.execute(
                "SELECT array_agg(nextval(%s::regclass) ORDER BY g DESC)"
                " FROM generate_series(1, %s) AS g",
                [self.sequence, self.block],
            )
            self._pending = self.cursor.fetchone()[0]
            # Grow the blocks of busy tables: fewer round trips.
            self.block = min(self.block * 2, MAX_ID_BLOCK)
        return self._pending.pop()


@contextmanager
def bulk_settings(cursor, **settings: str) -> Iterator[None]:
    """Run the block with these settings (``set_config(..., true)``), and restore the previous
    values after it: inside an outer transaction SET LOCAL would otherwise outlive the block.
    (When the block raises, the caller's savepoint rollback restores them.)

    ``session_replication_role='replica'`` turns every trigger off, the application's and the
    foreign-key checks alike: the caller must load consistent rows and compute what the
    triggers would have.
    """
    previous = {}
    for name, value in settings.items():
        cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value])
        previous[name] = cursor.fetchone()[0]
    yield
    for name, value in previous.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
