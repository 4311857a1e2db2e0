"""Chart data: a Series for Chart.js, and the daily tokens and cost per provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from usage.dashboard_selectors.all_users import AllUsersDays, all_users_days


@dataclass(frozen=True)
class Series:
    """A chart's data: labels on the x axis, one list of values per dataset."""

    labels: list[str]
    datasets: dict[str, list[float]]

    def chart(self, kind: str, *, stacked: bool = False, money: bool = False) -> dict:
        return {
            "type": kind,
            "labels": self.labels,
            "datasets": [{"label": name, "data": data} for name, data in self.datasets.items()],
            "stacked": stacked,
            "money": money,
        }


def daily_by_provider(
    *, start: date, end: date, days: AllUsersDays | None = None
) -> tuple[Series, Series]:
    """Daily tokens and daily cost per provider, ``start`` to ``end`` inclusive (every day,
    zeros included), from the all-users totals and ``ai_usage_daily`` (by
    ``idx_ai_usage_provider_comparison``) for the days after them."""
    rows = (days or all_users_days(start, end)).grouped("usage_date", "provider__name")
    calendar_days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    index = {day: n for n, day in enumerate(calendar_days)}
    tokens: dict[str, list[float]] = {}
    cost: dict[str, list[float]] = {}
    for row in rows:
        name = row["provider__name"]
        tokens.setdefault(name, [0] * len(calendar_days))[index[row["usage_date"]]] = row["tokens"]
        cost.setdefault(name, [0.0] * len(calendar_days))[index[row["usage_date"]]] = float(
            row["cost"]
        )
    labels = [day.isoformat() for day in calendar_days]
    return Series(labels, tokens), Series(labels, cost)
