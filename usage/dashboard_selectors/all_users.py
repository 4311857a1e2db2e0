"""Every user's counters per UTC day, provider and model: the all-users totals for the days
they cover, ``ai_usage_daily`` for the days after them (today), so a page that covers every
user does not grow with the number of users."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from usage.dashboard_selectors.periods import today_utc
from usage.dashboard_selectors.totals import _SUMS, _summed
from usage.models import AIUsageDailyTotal, AIUsageTotalsState
from witchcraft.platform import replica

DAY_KEYS = ("usage_date", "provider__name", "model__display_name")


@dataclass(frozen=True)
class AllUsersDays:
    """Every user's counters per UTC day, provider and model over a period (the all-users
    totals, and ai_usage_daily for the days after them), read once for a page: each of its
    tables and charts groups these rows (at most days x models) in Python. ``users_by_day``:
    the users active on each day read from ai_usage_daily (today, at least)."""

    rows: list[dict]
    users_by_day: dict[date, int] = field(default_factory=dict)
    today_as_of: datetime | None = None  # today's rows are as of then (the minute's refresh)

    def grouped(self, *keys: str) -> list[dict]:
        merged: dict[tuple, dict] = {}
        for row in self.rows:
            key = tuple(row[name] for name in keys)
            into = merged.get(key)
            if into is None:
                merged[key] = {**{name: row[name] for name in keys}, **_sums_of(row)}
            else:
                for name in _SUMS:
                    into[name] += row[name] or 0
        return list(merged.values())


def _sums_of(row: dict) -> dict:
    return {name: row[name] or 0 for name in _SUMS}


TODAY_FRESH = timedelta(minutes=2)


def all_users_days(start: date, end: date, *, count_users: bool = False) -> AllUsersDays:
    """Every user's counters of ``start`` to ``end`` (inclusive) per day, provider and model:
    the all-users totals for the days they cover, and for today as of its last refresh (the
    job worker's, every minute) while that is under TODAY_FRESH old; ``ai_usage_daily`` for
    the other days (one query, which with ``count_users`` also counts each of those days'
    users)."""
    state = AIUsageTotalsState.objects.values(
        "covered_before", "today_date", "today_as_of", "today_users"
    ).first()
    rows: list[dict] = []
    if state is not None and start < state["covered_before"]:
        last_covered = min(end, state["covered_before"] - timedelta(days=1))
        rows += _summed(
            AIUsageDailyTotal.objects.filter(usage_date__range=(start, last_covered)), *DAY_KEYS
        )
        start = state["covered_before"]
    users_by_day: dict[date, int] = {}
    today, as_of = today_utc(), None
    live = [(start, end)]
    if (
        start <= today <= end
        and state is not None
        and state["today_date"] == today
        and state["today_as_of"] is not None
        and state["today_as_of"] >= datetime.now(UTC) - TODAY_FRESH
    ):
        rows += _summed(AIUsageDailyTotal.objects.filter(usage_date=today), *DAY_KEYS)
        users_by_day[today] = state["today_users"]
        as_of = state["today_as_of"]
        live = [(start, today - timedelta(days=1)), (today + timedelta(days=1), end)]
    for first, last in live:
        if first <= last:
            live_rows, live_users = _live_days(first, last, count_users=count_users)
            rows += live_rows
            users_by_day |= live_users
    return AllUsersDays(rows, users_by_day, as_of)


# The days the totals do not cover yet, per day, provider and model, and (with the users) each
# day's users, in one scan of their ai_usage_daily rows (GROUPING SETS: the ORM cannot say it).
_LIVE_DAYS = """
SELECT d.usage_date, p.name, m.display_name, {day_total},
       sum(d.request_count), sum(d.error_count), sum(d.total_tokens), sum(d.cost),
       sum(d.latency_ms_sum), sum(d.latency_count), {users}
  FROM ai_usage_daily d
  JOIN ai_providers p ON p.id = d.provider_id
  JOIN ai_models m ON m.id = d.model_id
 WHERE d.usage_date BETWEEN %s AND %s
 GROUP BY {groups}
"""
_LIVE_DAYS_WITH_USERS = _LIVE_DAYS.format(
    day_total="GROUPING(p.name, m.display_name)",
    users="count(DISTINCT d.user_id)",
    groups="GROUPING SETS ((d.usage_date, p.name, m.display_name), (d.usage_date))",
)
_LIVE_DAYS_ONLY = _LIVE_DAYS.format(
    day_total="0", users="0", groups="d.usage_date, p.name, m.display_name"
)


def _live_days(start: date, end: date, *, count_users: bool) -> tuple[list[dict], dict[date, int]]:
    rows, users = [], {}
    with replica.read_connection().cursor() as cursor:
        cursor.execute(_LIVE_DAYS_WITH_USERS if count_users else _LIVE_DAYS_ONLY, [start, end])
        for day, provider, model, day_total, *sums, day_users in cursor.fetchall():
            if day_total:
                users[day] = day_users
            else:
                rows.append(
                    {
                        "usage_date": day,
                        "provider__name": provider,
                        "model__display_name": model,
                        **dict(zip(_SUMS, sums, strict=True)),
                    }
                )
    return rows, users
