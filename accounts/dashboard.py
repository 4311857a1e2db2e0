"""``/dashboard/audit/`` and ``/dashboard/audit.csv``: the audit trail for staff, filtered,
paginated and exportable, with failed sign-in spikes flagged and actions taken by someone
other than the subject (impersonation, staff) marked. Staff only."""

import csv
import json
from datetime import timedelta

from django import forms
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from accounts import audit, selectors
from accounts.models import AuditSeverity
from witchcraft.platform import replica
from witchcraft.platform.csv_export import csv_cell
from witchcraft.platform.form_fields import Moment
from witchcraft.platform.staff_pages import dashboard_page, staff_required

PER_PAGE = 50
# Counting stops here: a page count over 10 million rows would scan them all.
COUNT_CAP = 10_000
CSV_MAX_ROWS = 10_000
SPIKE_WINDOW = timedelta(hours=24)
# Cells starting with one of these are formulas to a spreadsheet (CSV injection).

dashboard_page("dashboard:audit", "Audit")


class BoundedPaginator(Paginator):
    """A paginator whose count stops at COUNT_CAP (``count_capped`` says when it did)."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()

    @property
    def count_capped(self) -> bool:
        return self.count > COUNT_CAP


class AuditFilterForm(forms.Form):
    event_type = forms.CharField(required=False, max_length=64, label="Event")
    severity = forms.ChoiceField(
        required=False, choices=[("", "Any"), *AuditSeverity.choices], label="Severity"
    )
    user = forms.EmailField(required=False, label="User email")
    actor = forms.EmailField(required=False, label="Actor email")
    ip = forms.GenericIPAddressField(required=False, label="IP")
    since = Moment(
        required=False,
        label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = Moment(
        required=False,
        label="To (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def filters(self) -> dict:
        """The selector's keyword arguments (nothing filtered when the form is invalid)."""
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "event_type": data["event_type"].strip(),
            "severity": data["severity"],
            "user_email": data["user"],
            "actor_email": data["actor"],
            "ip": data["ip"] or None,
            "since": data["since"],
            "until": data["until"],
        }


def _rows(page) -> list[dict]:
    return [
        {
            "log": log,
            "impersonated": log.event_type == audit.IMPERSONATED_ACTION,
            "by_other": log.actor_id is not None and log.actor_id != log.user_id,
            "details": json.dumps(log.details, sort_keys=True) if log.details else "",
        }
        for log in page
    ]


def _spike_range(filters: dict) -> tuple:
    until = filters.get("until") or timezone.now()
    since = filters.get("since") or until - SPIKE_WINDOW
    return since, until


@staff_required
@require_safe
@never_cache
def audit_trail(request):
    form = AuditFilterForm(request.GET or None)
    filters = form.filters()
    since, until = _spike_range(filters)

    def listing() -> dict:
        page = BoundedPaginator(selectors.audit_trail(**filters), PER_PAGE).get_page(
            request.GET.get("page")
        )
        return {
            "page": page,
            "rows": _rows(page),
            "spikes": selectors.failed_login_spikes(since=since, until=until),
        }

    return render(
        request,
        "dashboard/audit.html",
        {
            "form": form,
            "filtered": any(filters.values()),
            **replica.read(request, listing),
            "spike_since": since,
            "spike_until": until,
            "spike_threshold": selectors.FAILED_LOGIN_SPIKE_PER_MINUTE,
            "count_cap": COUNT_CAP,
            "csv_max_rows": CSV_MAX_ROWS,
        },
    )


CSV_HEADER = [
    "created_at",
    "event_type",
    "severity",
    "user",
    "actor",
    "ip",
    "user_agent",
    "request_id",
    "target_type",
    "target_id",
    "details",
]


@staff_required
@require_safe
@never_cache
def audit_csv(request):
    """The filtered rows (at most CSV_MAX_ROWS, newest first) as CSV."""
    form = AuditFilterForm(request.GET or None)
    filters = form.filters()
    logs = replica.read(request, lambda: list(selectors.audit_trail(**filters)[:CSV_MAX_ROWS]))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    for log in logs:
        writer.writerow(
            csv_cell(value)
            for value in (
                log.created_at.isoformat(),
                log.event_type,
                log.severity,
                log.user.email if log.user else "",
                log.actor.email if log.actor else "",
                log.ip or "",
                log.user_agent,
                log.request_id,
                log.target_type,
                log.target_id,
                json.dumps(log.details, sort_keys=True) if log.details else "",
            )
        )
    return response
