"""Reads for the staff dashboard's overview and usage pages: plain data.

Totals and charts read the roll-ups (``ai_usage_daily``, ``ai_usage_monthly``) through their
named indexes, never ``ai_usage_requests``; every list is bounded. What covers every user reads
the all-users totals (``ai_usage_daily_totals``) for the days they cover and ``ai_usage_daily``
only for the days after (today), so its time does not grow with the number of users.

The package holds them by topic: periods, totals (the summed counters), all_users (every
user's counters per day), charts, comparison (a period's totals against the period before),
overview (the overview page's KPIs and lists) and usage_page (its filters and tables); every
public name stays importable from
``usage.dashboard_selectors``.
"""

from usage.dashboard_selectors.all_users import (
    DAY_KEYS,
    TODAY_FRESH,
    AllUsersDays,
    all_users_days,
)
from usage.dashboard_selectors.charts import Series, daily_by_provider
from usage.dashboard_selectors.comparison import (
    Compared,
    days_between,
    usage_page_comparison,
)
from usage.dashboard_selectors.overview import (
    SECURITY_SEVERITIES,
    OverviewKpis,
    UserCost,
    overview_kpis,
    overview_periods,
    security_events,
    top_users_by_cost,
)
from usage.dashboard_selectors.periods import (
    MAX_PERIOD_DAYS,
    QUICK_RANGES,
    Change,
    Period,
    comparison_period,
    previous_month,
    quick_range,
    quick_range_of,
    today_utc,
)
from usage.dashboard_selectors.totals import Totals
from usage.dashboard_selectors.usage_page import (
    Row,
    UsageFilter,
    cost_by_month,
    model_popularity,
    provider_comparison,
)

__all__ = [
    "DAY_KEYS",
    "MAX_PERIOD_DAYS",
    "QUICK_RANGES",
    "SECURITY_SEVERITIES",
    "TODAY_FRESH",
    "AllUsersDays",
    "Change",
    "Compared",
    "OverviewKpis",
    "Period",
    "Row",
    "Series",
    "Totals",
    "UsageFilter",
    "UserCost",
    "all_users_days",
    "comparison_period",
    "cost_by_month",
    "daily_by_provider",
    "days_between",
    "model_popularity",
    "overview_kpis",
    "overview_periods",
    "previous_month",
    "provider_comparison",
    "quick_range",
    "quick_range_of",
    "security_events",
    "today_utc",
    "top_users_by_cost",
    "usage_page_comparison",
]
