"""When demo people use Witchcraft: the daily rhythm, and every request and session in order.

Requests and session starts fall mostly in working hours of the person's time zone, less at
weekends, a little more towards the end of the window (a growing product), with a day-to-day
spread. :func:`write_activity` then plays them in time order (a heap of pending steps), so the
person's quota sees the rows in the order of their timestamps.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Generator

from witchcraft.demo import bulk
from witchcraft.demo.agents import SessionWriter
from witchcraft.demo.plan import Person, Window, lognormal, poisson
from witchcraft.demo.usage import Quota, UsageWriter

HOUR = 3600 * bulk.US_PER_SECOND
HOURS = tuple(range(24))
WEEKDAY_HOURS = (
    0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.5, 1.2, 2.5, 3.6, 3.9, 3.8,
    2.9, 3.2, 3.8, 3.7, 3.4, 2.8, 2.0, 1.6, 1.5, 1.3, 0.9, 0.5,
)  # fmt: skip
WEEKEND_HOURS = (
    0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.4, 0.8, 1.3, 1.8, 2.0,
    2.0, 1.9, 1.8, 1.8, 1.8, 1.7, 1.7, 1.8, 1.9, 1.7, 1.2, 0.8,
)  # fmt: skip
# Weekdays and weekends relative to an average day (5 x 1.16 + 2 x 0.42 = 7).
WEEKDAY_FACTOR = 1.16
WEEKEND_FACTOR = 0.42
GROWTH = 0.1  # the last day of the window is this much busier than the first
DAY_SPREAD = 0.35


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


WEEKDAY_CUM = _cumulative(WEEKDAY_HOURS)
WEEKEND_CUM = _cumulative(WEEKEND_HOURS)


def is_weekend(day: int) -> bool:
    """Saturday or Sunday (day 0, 1970-01-01, was a Thursday)."""
    return (day + 3) % 7 >= 5


def local_times(rng: random.Random, person: Person, day: int, count: int) -> list[int]:
    """``count`` moments (microseconds since the epoch, UTC) of the person's local ``day``."""
    if count <= 0:
        return []
    midnight = day * bulk.US_PER_DAY - person.offsets[day]
    cum = WEEKEND_CUM if is_weekend(day) else WEEKDAY_CUM
    return [
        midnight + hour * HOUR + int(rng.random() * HOUR)
        for hour in rng.choices(HOURS, cum_weights=cum, k=count)
    ]


def write_activity(
    person: Person,
    quota: Quota,
    window: Window,
    rng: random.Random,
    usage: UsageWriter,
    sessions: SessionWriter,
) -> None:
    """Every request and agent session of ``person`` in the window, in time order."""
    if person.dormant:
        return
    start = max(window.start, person.joined)
    last_day = window.first_day + window.days - 1
    span = max(1, window.days - 1)
    pending: list[tuple[int, int, Generator[int, None, None] | None]] = []
    for day in range(max(window.first_day, person.joined // bulk.US_PER_DAY), last_day + 1):
        factor = (
            (WEEKEND_FACTOR if is_weekend(day) else WEEKDAY_FACTOR)
            * (1 - GROWTH / 2 + GROWTH * (day - window.first_day) / span)
            * lognormal(rng, -DAY_SPREAD * DAY_SPREAD / 2, DAY_SPREAD)
        )
        requests = poisson(rng, person.requests_per_day * factor)
        starts = poisson(rng, person.sessions_per_day * factor)
        for at in local_times(rng, person, day, requests):
            if start <= at <= window.now:
                pending.append((at, len(pending), None))
        for at in local_times(rng, person, day, starts):
            if start <= at <= window.now:
                pending.append((at, len(pending), sessions.timeline(person, quota, at)))
    heapq.heapify(pending)
    order = len(pending)
    while pending:
        at, _, session = heapq.heappop(pending)
        if session is None:
            usage.request(person, quota, at)
            continue
        step = next(session, None)
        if step is None:
            continue
        if step > window.now:
            session.close()  # the row of a session still going on
            continue
        heapq.heappush(pending, (step, order, session))
        order += 1
