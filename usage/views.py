"""The user's own usage page: the usage report (``/me/usage/``, with its CSV export). Every
number comes from the daily and monthly roll-ups. The overview (``/me/``) spans domains and is
in witchcraft/selfservice/views.py."""

from __future__ import annotations

import csv

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from usage import drilldown, me_selectors, selectors
from usage.dashboard_selectors import Series, periods
from usage.forms import (
    RequestLogForm,
    UsageRangeForm,
    chart_switches,
    quick_links,
    range_form,
    shown_form,
)
from witchcraft.platform import replica
from witchcraft.platform.csv_export import csv_cell
from witchcraft.platform.me_pages import register_page, self_service

register_page("usage:me_usage", "Usage")


def _charts(report: me_selectors.UsageReport) -> dict:
    """Chart specs (static/js/charts.js) of the daily tokens, daily cost and monthly cost."""
    labels = [entry.day.isoformat() for entry in report.days]
    months = list(reversed(report.months))  # oldest first, left to right
    return {
        "tokens_chart": Series(
            labels, {"Tokens": [entry.usage.tokens for entry in report.days]}
        ).chart("bar"),
        # Chart heights only: the tables show the exact Decimal amounts.
        "cost_chart": Series(
            labels, {"Cost": [float(entry.usage.cost) for entry in report.days]}
        ).chart("bar", money=True),
        "months_chart": Series(
            [f"{month.year}-{month.month:02d}" for month in months],
            {"Cost": [float(month.totals.cost) for month in months]},
        ).chart("bar", money=True)
        if months
        else None,
    }


@self_service
def me_usage(request):
    # A refused query: its errors above the default range (never a page without numbers).
    form, errors = range_form(UsageRangeForm, request.GET)
    date_from, date_to = form.cleaned_data["from"], form.cleaned_data["to"]
    figures = replica.read(
        request, lambda: _usage_figures(request, form, date_from=date_from, date_to=date_to)
    )
    context = {
        # The inputs show the range in effect, defaults and quick ranges included.
        "form": shown_form(UsageRangeForm, form),
        "range_errors": errors,
        "quick_links": quick_links(request.path, current=form.cleaned_data["range"]),
        "csv_query": f"from={date_from.isoformat()}&to={date_to.isoformat()}",
        **figures,
    }
    return render(request, "me/usage.html", context, status=400 if errors else 200)


def _usage_figures(request, form, *, date_from, date_to) -> dict:
    """The usage page's report, comparison and charts (analytics: the replica may serve them)."""
    report = me_selectors.usage_report_for_user(
        user_id=request.user.pk, date_from=date_from, date_to=date_to
    )
    return {
        "report": report,
        "comparison": me_selectors.usage_comparison_for_user(
            user_id=request.user.pk,
            period=form.period,
            previous=form.comparison,
            now=report.total,
            today=periods.today_utc(),
        ),
        **_charts(report),
        **_daily(request, date_from=date_from, date_to=date_to),
    }


def _daily(request, *, date_from, date_to) -> dict:
    """The daily chart by provider or model and its table, each day linked to its requests."""
    by, metric = chart_switches(request.GET)
    daily = drilldown.user_daily_breakdown(
        user_id=request.user.pk, start=date_from, end=date_to, by=by
    )
    return drilldown.chart_context(daily, metric=metric, log_url=reverse("usage:me_usage_requests"))


@self_service
def me_usage_requests(request):
    """Your requests of one UTC day for one provider or model, most expensive first (your
    rows only: the query names you, and row-level security holds it too)."""
    form = RequestLogForm(request.GET)
    if not form.is_valid():
        return render(request, "me/usage_requests.html", {"form": form}, status=400)
    data = form.cleaned_data
    log = replica.read(
        request,
        lambda: drilldown.request_log(
            day=data["day"],
            provider_id=data["provider"].pk,
            model_id=data["model"].pk if data["model"] else None,
            user_id=request.user.pk,
            page=request.GET.get("page"),
        ),
    )
    context = {"form": form, "log": log, "provider": data["provider"], "model": data["model"]}
    return render(request, "me/usage_requests.html", context)


CSV_HEADER = [
    "date",
    "provider",
    "model",
    "requests",
    "successes",
    "failures",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
]


def csv_rows(rows: list[selectors.DailyUsage]) -> list[list[str]]:
    """The CSV export's rows: one per UTC day, provider and model (a provider or model that
    left the catalog is an empty cell), every cell escaped against spreadsheet formulas."""
    return [
        [
            csv_cell(value)
            for value in (
                row.day.isoformat(),
                row.provider,
                row.model,
                row.totals.requests,
                row.totals.successes,
                row.totals.failures,
                row.totals.input_tokens,
                row.totals.output_tokens,
                row.totals.cached_input_tokens,
                row.totals.reasoning_tokens,
                row.totals.total_tokens,
                f"{row.totals.cost:.6f}",
            )
        ]
        for row in rows
    ]


@self_service
def me_usage_csv(request):
    form = UsageRangeForm(request.GET)
    if not form.is_valid():
        return HttpResponse(form.error_text(), status=400, content_type="text/plain; charset=utf-8")
    date_from, date_to = form.cleaned_data["from"], form.cleaned_data["to"]
    rows = replica.read(
        request,
        lambda: selectors.usage_daily_for_user(
            user_id=request.user.pk, date_from=date_from, date_to=date_to
        ),
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="usage-{date_from.isoformat()}-{date_to.isoformat()}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(rows))
    return response
