"""Drill-down from a spike to the requests behind it (issue 19): the daily breakdown of a
period by provider or model (a stacked chart and its table, read from the daily roll-ups), the
request log of one UTC day for one provider or model (raw rows, paginated, index-backed), and
the spend per API token this month.

Days are UTC days, as the roll-ups' (a bar of the chart and the log it opens cover the same
requests); the log shows each request's time in the reader's display time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db.models import Sum

from accounts.models import AccessToken
from usage.dashboard_selectors.all_users import AllUsersDays
from usage.dashboard_selectors.usage_page import UsageFilter, _grouped
from usage.models import AIModel, AIProvider, AIUsageRequest
from usage.selectors import usage_daily_rows
from witchcraft.platform import replica

BY_PROVIDER, BY_MODEL = "provider", "model"
GROUPINGS = (BY_PROVIDER, BY_MODEL)
COST, TOKENS = "cost", "tokens"
METRICS = (COST, TOKENS)
LOG_PAGE_SIZE = 50
MAX_TOKENS_SHOWN = 100  # a user's tokens listed with their spend; more are summed as "others"


@dataclass(frozen=True)
class Group:
    """A provider or model of the breakdown: its label and the log's query parameter."""

    param: str  # "provider" or "model"
    value: str  # the provider's slug or the model's id
    label: str


@dataclass(frozen=True)
class DayCell:
    """One day of one group: the table's line and the chart's bar segment."""

    day: date
    group: Group
    requests: int
    tokens: int
    cost: Decimal


@dataclass(frozen=True)
class DailyBreakdown:
    """A period's days by provider or model: ``cells`` oldest day first, then by cost."""

    start: date
    end: date
    by: str
    groups: list[Group]
    cells: list[DayCell]

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def chart(self, *, metric: str, log_url: str) -> dict:
        """The Chart.js spec (static/js/charts.js): a stacked bar per day, a dataset per group,
        and ``links``: for each dataset, per day, the request log of that day and group (None
        where the bar is empty)."""
        days = self.days
        index = {day: n for n, day in enumerate(days)}
        datasets, links = [], []
        for group in self.groups:
            values: list[float] = [0] * len(days)
            urls: list[str | None] = [None] * len(days)
            for cell in self.cells:
                if cell.group == group:
                    n = index[cell.day]
                    values[n] = float(cell.cost) if metric == COST else cell.tokens
                    urls[n] = log_link(log_url, cell)
            datasets.append({"label": group.label, "data": values})
            links.append(urls)
        return {
            "type": "bar",
            "labels": [day.isoformat() for day in days],
            "datasets": datasets,
            "stacked": True,
            "money": metric == COST,
            "links": links,
        }


def log_link(log_url: str, cell: DayCell) -> str:
    return f"{log_url}?day={cell.day.isoformat()}&{cell.group.param}={cell.group.value}"


def chart_context(daily: DailyBreakdown, *, metric: str, log_url: str) -> dict:
    """What templates/usage/daily_breakdown.html shows: the chart spec, the table's lines
    with their log links, and the switches (GET ``chart_by``, ``chart_metric``)."""
    return {
        "daily": daily,
        "daily_chart": daily.chart(metric=metric, log_url=log_url) if daily.cells else None,
        "daily_rows": [(cell, log_link(log_url, cell)) for cell in daily.cells],
        "chart_by": daily.by,
        "chart_metric": metric,
        "chart_by_choices": [(BY_PROVIDER, "By provider"), (BY_MODEL, "By model")],
        "chart_metric_choices": [(COST, "Cost"), (TOKENS, "Tokens")],
    }


def _breakdown(start: date, end: date, by: str, rows: list[dict]) -> DailyBreakdown:
    """``rows``: dicts of day, group, requests, tokens, cost (a group may repeat a day)."""
    merged: dict[tuple[date, Group], list] = {}
    for row in rows:
        sums = merged.setdefault((row["day"], row["group"]), [0, 0, Decimal(0)])
        sums[0] += row["requests"] or 0
        sums[1] += row["tokens"] or 0
        sums[2] += row["cost"] or Decimal(0)
    cells = [
        DayCell(day, group, requests, tokens, cost)
        for (day, group), (requests, tokens, cost) in merged.items()
    ]
    cells.sort(key=lambda cell: (cell.day, -cell.cost, cell.group.label))
    spend: dict[Group, Decimal] = {}
    for cell in cells:
        spend[cell.group] = spend.get(cell.group, Decimal(0)) + cell.cost
    groups = sorted(spend, key=lambda group: (-spend[group], group.label))
    return DailyBreakdown(start, end, by, groups, cells)


def staff_daily_breakdown(
    *, flt: UsageFilter, by: str, days: AllUsersDays | None = None
) -> DailyBreakdown:
    """Every user's days of the usage page's filter by provider or model: the all-users
    totals (``ai_usage_daily_totals``) when only a period is asked for, else the filtered
    ``ai_usage_daily`` rows; never a request row. Names are matched to the catalog (one query)
    for the log's parameters."""
    keys = ["usage_date", "provider__name"] + (["model__display_name"] if by == BY_MODEL else [])
    grouped = _grouped(flt, days, *keys)
    catalog = list(AIModel.objects.values("id", "display_name", "provider__name", "provider__slug"))
    providers = {m["provider__name"]: m["provider__slug"] for m in catalog}
    models = {(m["display_name"], m["provider__name"]): m["id"] for m in catalog}
    rows = []
    for row in grouped:
        provider = row["provider__name"]
        if by == BY_PROVIDER:
            group = Group(BY_PROVIDER, providers.get(provider, ""), provider)
        else:
            model = row["model__display_name"]
            group = Group(BY_MODEL, str(models.get((model, provider), "")), f"{model} ({provider})")
        rows.append({"day": row["usage_date"], "group": group, **row})
    return _breakdown(flt.start, flt.end, by, rows)


def user_daily_breakdown(*, user_id: int, start: date, end: date, by: str) -> DailyBreakdown:
    """The user's days by provider or model, from their ``ai_usage_daily`` rows (one query,
    and one for the catalog's names)."""
    field = "provider_id" if by == BY_PROVIDER else "model_id"
    grouped = list(
        usage_daily_rows(user_id=user_id, date_from=start, date_to=end)
        .values("usage_date", field)
        .annotate(requests=Sum("request_count"), tokens=Sum("total_tokens"), cost=Sum("cost"))
        .order_by()
    )
    if by == BY_PROVIDER:
        names = dict(AIProvider.objects.values_list("id", "name"))
        slugs = dict(AIProvider.objects.values_list("id", "slug"))

        def group_of(key: int) -> Group:
            return Group(BY_PROVIDER, slugs.get(key, ""), names.get(key, "(retired provider)"))
    else:
        labels = {
            m["id"]: f"{m['display_name']} ({m['provider__name']})"
            for m in AIModel.objects.values("id", "display_name", "provider__name")
        }

        def group_of(key: int) -> Group:
            return Group(BY_MODEL, str(key), labels.get(key, "(retired model)"))

    rows = [{"day": row["usage_date"], "group": group_of(row[field]), **row} for row in grouped]
    return _breakdown(start, end, by, rows)


# The request log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenName:
    name: str
    prefix: str


@dataclass(frozen=True)
class RequestLog:
    page: Page
    tokens: dict[int, TokenName]  # the page's tokens by id (absent: deleted since)
    start: datetime
    end: datetime


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day ``day`` as [start, end) instants."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def request_log(
    *,
    day: date,
    provider_id: int,
    model_id: int | None = None,
    user_id: int | None = None,
    page: str | int | None = 1,
) -> RequestLog:
    """The requests of the UTC day ``day`` for a provider (and one of its models), most
    expensive first, LOG_PAGE_SIZE a page; only ``user_id``'s when given (row-level security
    applies as well). Three queries: the count, the page (with its user, provider and model)
    and the page's token names.

    Index-backed: ``created_at`` prunes to the month's partition; without a user,
    ``ai_usage_requests_provider_day`` (provider_id, created_at, model_id) reads only the day's
    rows of the provider (model_id checked in the index); with one, ``idx_ai_usage_user_recent``
    (user_id, created_at) reads only the user's day. The day's rows are then sorted by cost (a
    top-N sort: no index can hold a cost order per arbitrary day)."""
    start, end = day_bounds(day)
    rows = AIUsageRequest.objects.filter(
        created_at__gte=start, created_at__lt=end, provider_id=provider_id
    )
    if model_id is not None:
        rows = rows.filter(model_id=model_id)
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    rows = (
        rows.select_related("user", "provider", "model")
        .only(
            "id",
            "created_at",
            "user__id",
            "user__email",
            "provider__name",
            "provider__slug",
            "model__display_name",
            "model__name",
            "input_tokens",
            "output_tokens",
            "cost",
            "latency_ms",
            "status",
            "agent_session_id",
            "access_token_id",
        )
        .order_by("-cost", "-created_at", "-id")
    )
    current = Paginator(rows, LOG_PAGE_SIZE).get_page(page)
    current.object_list = list(current.object_list)
    ids = {row.access_token_id for row in current.object_list if row.access_token_id}
    tokens = (
        {
            token["id"]: TokenName(token["name"], token["prefix"])
            for token in AccessToken.objects.filter(id__in=ids).values("id", "name", "prefix")
        }
        if ids
        else {}
    )
    for row in current.object_list:
        # None: no token sent it, or the token was deleted since (the template tells which).
        row.token = tokens.get(row.access_token_id)
    return RequestLog(current, tokens, start, end)


# Spend per API token ----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSpend:
    token_id: int | None  # None: what no token sent (web pages, service credentials)
    name: str
    prefix: str
    requests: int
    cost: Decimal


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


# One statement (the 360° page counts its queries): the user's latest tokens, what each token
# sent this month (ai_usage_requests_token_spend: user_id, created_at INCLUDE access_token_id,
# cost; the month's partition only), and the month's roll-up row (kind 2). The user filter keeps
# another's rows out whatever row-level security allows (a staff reader sees every row).
_MONTH_SPEND_SQL = """
WITH listed AS (
    SELECT t.id, t.name, t.prefix, t.created_at
      FROM access_tokens t
     WHERE t.user_id = %(user)s
     ORDER BY t.created_at DESC, t.id DESC
     LIMIT %(shown)s
), spent AS (
    SELECT r.access_token_id AS id, count(*) AS requests, sum(r.cost) AS cost
      FROM ai_usage_requests r
     WHERE r.user_id = %(user)s AND r.access_token_id IS NOT NULL
       AND r.created_at >= %(start)s AND r.created_at < %(end)s
     GROUP BY r.access_token_id
)
SELECT 1 AS kind, coalesce(l.id, s.id), l.name, l.prefix, coalesce(s.requests, 0),
       coalesce(s.cost, 0), l.created_at
  FROM listed l FULL JOIN spent s ON s.id = l.id
UNION ALL
SELECT 2, NULL, NULL, NULL, m.request_count, m.cost, NULL
  FROM ai_usage_monthly m
 WHERE m.user_id = %(user)s AND m.year = %(year)s AND m.month = %(month)s
"""


def token_spend_this_month(*, user_id: int, now: datetime | None = None) -> list[TokenSpend]:
    """This UTC month's requests and cost of the user per API token: their MAX_TOKENS_SHOWN
    latest tokens newest first, then tokens not among them that sent something (deleted
    ones, named by id), then "No token": the month's roll-up (``ai_usage_monthly``) minus what
    the tokens sent. One query."""
    start = month_start(now)
    params = {
        "user": user_id,
        "shown": MAX_TOKENS_SHOWN,
        "start": start,
        "end": _next_month(start),
        "year": start.year,
        "month": start.month,
    }
    with replica.read_connection().cursor() as cursor:
        cursor.execute(_MONTH_SPEND_SQL, params)
        rows = cursor.fetchall()
    listed = sorted(
        (row for row in rows if row[0] == 1 and row[2] is not None),
        key=lambda row: (row[6], row[1]),
        reverse=True,
    )
    unlisted = sorted((row for row in rows if row[0] == 1 and row[2] is None), key=lambda r: r[1])
    spends = [TokenSpend(row[1], row[2], row[3], row[4], row[5]) for row in listed]
    spends += [TokenSpend(row[1], f"Token #{row[1]}", "", row[4], row[5]) for row in unlisted]
    month = next((row for row in rows if row[0] == 2), None)
    month_requests, month_cost = (month[4], month[5]) if month else (0, Decimal(0))
    sent = sum(spend.requests for spend in spends)
    spent = sum((spend.cost for spend in spends), Decimal(0))
    spends.append(
        TokenSpend(
            None,
            "No token",
            "",
            max(0, month_requests - sent),
            max(Decimal(0), month_cost - spent),
        )
    )
    return spends
