"""``/dashboard/quotas/``: who is near or over their quota (which limit fired, at what
threshold, when it reaches 100 % at this pace, and the quick actions: reset here, the rest on
the user's page), the quota alerts (with acknowledge) and the quota of any user. Staff only;
runs in the request's row-level-security context as an admin."""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from billing import projections, selectors, services
from witchcraft.platform.staff_pages import dashboard_page, staff_required

PER_PAGE = 50

dashboard_page("dashboard:quotas", "Quotas")


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("", "All"), *((s, s.capitalize()) for s in selectors.ALERT_STATUSES)],
    )


class QuotaLookupForm(forms.Form):
    email = forms.EmailField(required=False, label="Email")


def _percent(ratio: Decimal | None) -> int:
    """The usage ratio as a whole percent, for a <progress> (0-100) and the label."""
    return 0 if ratio is None else int(ratio * 100)


def _quota_row(quota, *, now) -> dict:
    percent = _percent(quota.usage_ratio)
    raised = quota.raised_until is not None and quota.raised_until > now
    return {
        "user": quota.user,
        "tokens_used": quota.tokens_used,
        "tokens_limit": quota.tokens_limit,
        "cost_used": quota.cost_used,
        "cost_limit": quota.cost_limit,
        "percent": percent,
        "bar": min(percent, 100),
        "over": quota.usage_ratio is not None and quota.usage_ratio >= 1,
        "period_end": quota.period_end,
        "tier": quota.tier_name or "",
        "fired": projections.fired_limits(quota, now=now),
        "raised_until": quota.raised_until if raised else None,
    }


@staff_required
@require_safe
@never_cache
def quotas(request):
    now = timezone.now()
    quota_page = Paginator(selectors.quotas_approaching_limit(), PER_PAGE).get_page(
        request.GET.get("page")
    )
    alert_form = AlertFilterForm(request.GET)
    status = alert_form.cleaned_data["status"] if alert_form.is_valid() else ""
    alert_page = Paginator(selectors.usage_alerts(status=status), PER_PAGE).get_page(
        request.GET.get("alerts_page")
    )
    lookup_form = QuotaLookupForm(request.GET)
    looked_up = None
    email = lookup_form.cleaned_data["email"] if lookup_form.is_valid() else ""
    if email:
        quota = selectors.quota_of(email=email)
        looked_up = _quota_row(quota, now=now) if quota is not None else None
    return render(
        request,
        "dashboard/quotas.html",
        {
            "counts": selectors.quota_counts(),
            "quota_page": quota_page,
            "quota_rows": [_quota_row(q, now=now) for q in quota_page],
            "may_reset": request.user.has_perm("billing.change_userquota"),
            "alert_form": alert_form,
            "alert_status": status,
            "alert_page": alert_page,
            "lookup_form": lookup_form,
            "lookup_email": email,
            "looked_up": looked_up,
        },
    )


@staff_required
@require_POST
def alert_acknowledge(request, alert_id: int):
    """Mark a quota alert as seen by this staff member (once), and audit it."""
    acknowledged = services.alert_acknowledge(alert_id=alert_id, staff_id=request.user.pk)
    if acknowledged is None:
        raise Http404
    if acknowledged:
        messages.success(request, "Alert acknowledged.")
    else:
        messages.info(request, "That alert was already acknowledged.")
    return redirect(reverse("dashboard:quotas") + "#alerts")
