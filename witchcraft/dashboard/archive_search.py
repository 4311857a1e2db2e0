"""``/dashboard/archive/``: staff search the archives by user and time range (README
"Retention"): the audit events stored compressed after AUDIT_COMPRESS_AFTER_DAYS and the usage
rows whose partitions moved to the archive schema after USAGE_ARCHIVE_AFTER_MONTHS. Each list
is paginated on its own (newest first), a fixed number of queries a page. Staff only."""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from accounts import archive as audit_archive
from accounts import selectors as account_selectors
from usage import archive as usage_archive
from usage import selectors as usage_selectors
from witchcraft.platform.form_fields import Email, Moment
from witchcraft.platform.staff_pages import dashboard_page, staff_required

PER_PAGE = 50
# Without a user, a search covers at most this long (every batch in the range is decompressed).
MAX_SPAN = timedelta(days=31)
NEED_USER_OR_RANGE = "Give a user, or a range (from and to) of at most 31 days."
NO_SUCH_USER = "No user has this email address or id."
TO_BEFORE_FROM = "'To' must be after 'From'."
MAX_PAGE = 10_000

dashboard_page("dashboard:archive", "Archive")


class ArchiveSearchForm(forms.Form):
    user = forms.CharField(required=False, max_length=254, label="User (email or id)")
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

    def clean_user(self):
        """The user named (only ``id`` and ``email`` loaded), or None when none is."""
        value = self.cleaned_data["user"].strip()
        if not value:
            return None
        if value.isdigit():  # an id (a bigint has at most 19 digits)
            user = account_selectors.user_brief(user_id=int(value)) if len(value) < 19 else None
        else:  # an address, checked as one first (nothing PostgreSQL cannot take gets there)
            user = account_selectors.user_brief(email=Email().clean(value))
        if user is None:
            raise forms.ValidationError(NO_SUCH_USER)
        return user

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if self.errors:
            return data
        if since and until and until <= since:
            raise forms.ValidationError(TO_BEFORE_FROM)
        if data.get("user") is None and not (since and until and until - since <= MAX_SPAN):
            raise forms.ValidationError(NEED_USER_OR_RANGE)
        return data


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < int(value) <= MAX_PAGE else 1


def _page(fetch, number: int, **filters) -> dict:
    """One page of ``fetch`` (one more row is read to know whether a next page exists)."""
    rows = fetch(**filters, limit=PER_PAGE + 1, offset=(number - 1) * PER_PAGE)
    return {
        "rows": rows[:PER_PAGE],
        "number": number,
        "previous": number - 1 if number > 1 else None,
        "next": number + 1 if len(rows) > PER_PAGE else None,
    }


@staff_required
@require_safe
@never_cache
def archive_search(request):
    form = ArchiveSearchForm(request.GET or None)
    context = {"form": form, "max_span_days": MAX_SPAN.days, "searched": False}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {
            "user_id": data["user"].pk if data["user"] else None,
            "since": data["since"],
            "until": data["until"],
        }
        audit = _page(
            audit_archive.archived_audit_events,
            _page_number(request.GET.get("audit_page")),
            **filters,
        )
        usage = _page(
            usage_archive.archived_usage_requests,
            _page_number(request.GET.get("usage_page")),
            **filters,
        )
        user_ids = {row["user_id"] for row in audit["rows"] + usage["rows"]}
        user_ids |= {row["actor_id"] for row in audit["rows"]}
        emails = account_selectors.user_emails(user_ids=user_ids - {None})
        models = usage_selectors.model_names()
        for row in audit["rows"]:
            row["user_email"] = emails.get(row["user_id"], "")
            row["by_other"] = row["actor_id"] is not None and row["actor_id"] != row["user_id"]
            row["actor_email"] = emails.get(row["actor_id"], "")
            details = row["details"]
            row["details_text"] = json.dumps(details, sort_keys=True) if details else ""
        for row in usage["rows"]:
            row["user_email"] = emails.get(row["user_id"], "")
            row["model_name"] = models.get(row["model_id"], f"model {row['model_id']}")
        context.update(searched=True, audit=audit, usage=usage, subject=data["user"])
    return render(request, "dashboard/archive.html", context)
