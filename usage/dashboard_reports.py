"""``/dashboard/reports/``: the monthly report of one complete month (default: the last one)
against the month before, and its CSV export (``/dashboard/reports.csv``). Staff only; reads
the stored report, the month's payments and the monthly roll-up (usage.monthly_reports)."""

from __future__ import annotations

import csv

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from usage import monthly_reports as reports
from usage.dashboard_selectors import Series
from witchcraft.platform import replica
from witchcraft.platform.staff_pages import dashboard_page, staff_required

dashboard_page("dashboard:reports", "Monthly reports")


class ReportMonthForm(forms.Form):
    month = forms.CharField(
        required=False, strip=True, widget=forms.TextInput({"type": "month"}), label="Month"
    )

    def clean_month(self):
        text = self.cleaned_data["month"]
        today = reports.today()
        if not text:
            return reports.last_complete_month(today=today)
        try:
            return reports.parse_month(text, today=today)
        except reports.MonthError as error:
            raise ValidationError(str(error), code="month") from None


def _month(request) -> tuple[ReportMonthForm, reports.MonthlyReport | None]:
    form = ReportMonthForm(request.GET or {"month": ""})
    if not form.is_valid():
        return form, None
    month = form.cleaned_data["month"]
    return form, replica.read(request, lambda: reports.monthly_report(month=month))


def _plans_chart(report: reports.MonthlyReport) -> dict | None:
    if not report.tiers:
        return None
    datasets = {report.label: [line.subscribers.current for line in report.tiers]}
    if report.previous_generated_at:
        datasets[report.previous_label] = [line.subscribers.previous for line in report.tiers]
    return Series([line.label for line in report.tiers], datasets).chart("bar")


@staff_required
@require_safe
@never_cache
def monthly_report(request):
    form, report = _month(request)
    context = {"form": form, "report": report}
    if report is not None:
        context["plans_chart"] = _plans_chart(report)
        # The form shows the month reported, also when none was asked for.
        context["form"] = ReportMonthForm(initial={"month": report.label})
    return render(request, "dashboard/reports.html", context)


@staff_required
@require_safe
@never_cache
def monthly_report_csv(request):
    form, report = _month(request)
    if report is None:
        return HttpResponse(
            "; ".join(str(error) for errors in form.errors.values() for error in errors),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="report-{report.label}.csv"'
    writer = csv.writer(response)
    writer.writerow(reports.CSV_HEADER)
    writer.writerows(reports.csv_rows(report))
    return response
