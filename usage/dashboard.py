"""Staff dashboard pages of usage: the overview (``/dashboard/``) and the usage analytics
(``/dashboard/usage/``, with its CSV export)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from billing import selectors as billing_selectors
from usage import dashboard_selectors as selectors
from usage import drilldown
from usage.dashboard_selectors import periods
from usage.forms import (
    RangeFormMixin,
    RequestLogForm,
    chart_switches,
    quick_links,
    quick_range_field,
    range_form,
    shown_form,
)
from usage.models import AIModel, AIProvider
from witchcraft.platform import replica
from witchcraft.platform.csv_export import csv_cell
from witchcraft.platform.form_fields import Day
from witchcraft.platform.staff_pages import dashboard_page, staff_required

dashboard_page("dashboard:overview", "Overview")
dashboard_page("dashboard:usage", "Usage")
# The request log (dashboard:usage_requests) is reached from the usage page's daily chart.

DEFAULT_DAYS = 30
PERIOD_TOO_LONG = f"The period may span at most {selectors.MAX_PERIOD_DAYS} days."
PERIOD_REVERSED = "The start of the period must not be after its end."


@staff_required
def overview(request):
    context = replica.read(request, _overview_figures)
    return render(request, "dashboard/overview.html", context)


def _overview_figures() -> dict:
    today = periods.today_utc()
    start = today - timedelta(days=DEFAULT_DAYS - 1)
    # Read once for the KPIs (this month to date, and the same days of last month) and the
    # charts (the last 30 days).
    first = min([start, *(period.start for period in selectors.overview_periods(today=today))])
    all_days = selectors.all_users_days(first, today)
    kpis = selectors.overview_kpis(today=today, days=all_days)
    days = selectors.days_between(all_days, start, today)
    tokens, cost = selectors.daily_by_provider(start=start, end=today, days=days)
    popular = selectors.model_popularity(
        flt=selectors.UsageFilter(start=start, end=today), limit=10, days=days
    )
    return {
        "kpis": kpis,
        "today": today,
        "today_as_of": days.today_as_of,
        "tokens_chart": tokens.chart("bar", stacked=True) if tokens.datasets else None,
        "cost_chart": cost.chart("bar", stacked=True, money=True) if cost.datasets else None,
        "popularity_chart": selectors.Series(
            [row.key for row in popular], {"Requests": [row.totals.requests for row in popular]}
        ).chart("bar")
        if popular
        else None,
        "top_users": selectors.top_users_by_cost(year=today.year, month=today.month),
        "alerts": billing_selectors.alerts_open(),
        "security_events": selectors.security_events(since=datetime.now(UTC) - timedelta(hours=24)),
    }


class UsageFilterForm(RangeFormMixin, forms.Form):
    start = Day(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    end = Day(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    provider = forms.ModelChoiceField(
        AIProvider.objects.order_by("name"), required=False, empty_label="All providers"
    )
    model = forms.ModelChoiceField(
        AIModel.objects.select_related("provider").order_by("provider__name", "display_name"),
        required=False,
        empty_label="All models",
    )
    tier = forms.ModelChoiceField(
        billing_selectors.tiers_all(),
        required=False,
        empty_label="All tiers",
    )
    user = forms.EmailField(required=False, label="User email")
    range = quick_range_field()

    # The period: RangeFormMixin.
    start_name, end_name = "start", "end"
    max_days = selectors.MAX_PERIOD_DAYS
    reversed_message = PERIOD_REVERSED
    too_long_message = PERIOD_TOO_LONG

    def usage_filter(self) -> selectors.UsageFilter:
        data = self.cleaned_data
        return selectors.UsageFilter(
            start=data["start"],
            end=data["end"],
            provider_id=data["provider"].pk if data.get("provider") else None,
            model_id=data["model"].pk if data.get("model") else None,
            tier_id=data["tier"].pk if data.get("tier") else None,
            user_email=data.get("user") or None,
        )


def _usage_tables(request, form=None):
    """The usage page's tables for the query (``form``: it validated, when given); None and
    the form with its errors when the query is refused."""
    if form is None:
        form = UsageFilterForm(request.GET)
    if not form.is_valid():
        return form, None
    flt = form.usage_filter()
    # Every user's days, read once for the three tables (only a period asked for).
    days = selectors.all_users_days(flt.start, flt.end) if flt.only_period else None
    return form, {
        "filter": flt,
        "providers": selectors.provider_comparison(flt=flt, days=days),
        "models": selectors.model_popularity(flt=flt, days=days),
        "months": selectors.cost_by_month(flt=flt, days=days),
        "today_as_of": days.today_as_of if days else None,
        "days": days,
    }


def _usage_range(request) -> tuple[UsageFilterForm, dict]:
    """The usage page's form of the range in force (the query's, or the default range with
    the query's errors when it is refused) and the range form's context."""
    form, errors = range_form(UsageFilterForm, request.GET)
    keep = (
        {}
        if errors
        else {
            name: request.GET.get(name, "")
            for name in form.fields
            if name not in (form.start_name, form.end_name, "range")
        }
    )
    return form, {
        "form": shown_form(UsageFilterForm, form),
        "range_errors": errors,
        "quick_links": quick_links(request.path, current=form.cleaned_data["range"], keep=keep),
    }


@staff_required
def usage(request):
    form, range_context = _usage_range(request)
    context = {**range_context, **replica.read(request, lambda: _usage_figures(request, form))}
    return render(request, "dashboard/usage.html", context)


def _usage_figures(request, form: UsageFilterForm) -> dict:
    _, tables = _usage_tables(request, form)
    context = {"tables": tables}
    if tables:
        providers, models, months = tables["providers"], tables["models"], tables["months"]
        context["provider_chart"] = selectors.Series(
            [row.key for row in providers],
            {"Tokens": [row.totals.tokens for row in providers]},
        ).chart("bar")
        context["model_chart"] = selectors.Series(
            [row.key for row in models[:10]],
            {"Requests": [row.totals.requests for row in models[:10]]},
        ).chart("bar")
        context["month_chart"] = selectors.Series(
            [row.key for row in months], {"Cost": [float(row.totals.cost) for row in months]}
        ).chart("bar", money=True)
        context["comparison"] = selectors.usage_page_comparison(
            flt=tables["filter"],
            previous=form.comparison,
            today=periods.today_utc(),
            days=tables["days"],
        )
        # The export of the range in force (quick ranges and defaults included).
        filters = {
            name: value
            for name, value in form.data.items()
            if value and name in form.fields and name not in ("start", "end", "range")
        }
        context["csv_query"] = urlencode(
            {**filters, "start": tables["filter"].start, "end": tables["filter"].end}
        )
        context |= _daily(request, tables)
    return context


def _daily(request, tables: dict) -> dict:
    """The daily chart and its table (the chart's text alternative) of the page's period, by
    provider or model, in cost or tokens (GET ``chart_by``, ``chart_metric``)."""
    by, metric = chart_switches(request.GET)
    daily = drilldown.staff_daily_breakdown(flt=tables["filter"], by=by, days=tables["days"])
    return drilldown.chart_context(
        daily, metric=metric, log_url=reverse("dashboard:usage_requests")
    )


@staff_required
def usage_requests(request):
    """The requests of one UTC day for one provider or model, most expensive first."""
    form = RequestLogForm(request.GET)
    if not form.is_valid():
        return render(request, "dashboard/usage_requests.html", {"form": form}, status=400)
    data = form.cleaned_data
    log = replica.read(
        request,
        lambda: drilldown.request_log(
            day=data["day"],
            provider_id=data["provider"].pk,
            model_id=data["model"].pk if data["model"] else None,
            page=request.GET.get("page"),
        ),
    )
    context = {"form": form, "log": log, "provider": data["provider"], "model": data["model"]}
    return render(request, "dashboard/usage_requests.html", context)


CSV_HEADER = ["table", "name", "requests", "tokens", "cost", "avg_latency_ms", "error_rate"]


def csv_rows(tables: dict) -> list[list[str]]:
    """The rows of the usage page's three tables, as the CSV export writes them."""
    rows = []
    for table in ("providers", "models", "months"):
        for row in tables[table]:
            totals = row.totals
            rate = totals.error_rate
            rows.append(
                [
                    table,
                    row.key,
                    totals.requests,
                    totals.tokens,
                    f"{totals.cost:.2f}",
                    "" if totals.average_latency_ms is None else totals.average_latency_ms,
                    "" if rate is None else f"{rate:.1f}",
                ]
            )
    return [[csv_cell(value) for value in row] for row in rows]


@staff_required
def usage_csv(request):
    form, tables = replica.read(request, lambda: _usage_csv_tables(request))
    if tables is None:
        return HttpResponse(
            "; ".join(str(error) for errors in form.errors.values() for error in errors),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    flt = tables["filter"]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="usage-{flt.start.isoformat()}-{flt.end.isoformat()}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    writer.writerows(tables["rows"])
    return response


def _usage_csv_tables(request):
    form, tables = _usage_tables(request)
    return form, tables and {**tables, "rows": csv_rows(tables)}
