"""``/me/plan/``, ``/me/payments/`` and the payment provider's webhook (thin views)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from accounts.audit import clean_text, request_user_agent
from billing import checkout, errors, selectors, services, webhooks
from witchcraft.platform import refusals
from witchcraft.platform.me_pages import register_page, self_service

logger = logging.getLogger(__name__)

register_page("billing:me_plan", "Plan")
register_page("billing:me_payments", "Payments")

PAGE_SIZE = 20
SCHEDULED = "Your plan moves to {name} on {date}. Until then your current limits stay."
RESUMED = "The scheduled change is undone: your plan continues."
NOTHING_TO_RESUME = "No change was scheduled."
CHECKOUT_RETURNED = (
    "Thank you. Your plan changes here as soon as the payment provider confirms the payment:"
    " reload this page in a moment."
)
CHECKOUT_CONFIRMED = "Thank you: your payment is confirmed and your new plan is active."
# A plan started this recently through the provider is the checkout the user returns from.
CHECKOUT_RECENT = timedelta(minutes=30)
UNKNOWN_PROVIDER = "No payment provider of that name is set up here."

# The features of a tier, in the order the comparison shows them.
FEATURE_LABELS = {
    "agents": "Agents",
    "premium_models": "Premium models",
    "api_tokens": "API tokens",
    "history_days": "History kept (days)",
    "support": "Support",
    "sso": "Single sign-on",
}


class PlanChangeForm(forms.Form):
    tier = forms.SlugField(max_length=40)


def _feature_rows(tiers: list[selectors.PlanTier]) -> list[dict]:
    keys = [key for key in FEATURE_LABELS if any(key in t.tier.features for t in tiers)]
    return [
        {"label": FEATURE_LABELS[key], "values": [t.tier.features.get(key) for t in tiers]}
        for key in keys
    ]


def _just_bought(plan: selectors.CurrentPlan | None) -> bool:
    return bool(
        plan
        and plan.paid_through_provider
        and plan.period_start >= timezone.now() - CHECKOUT_RECENT
    )


def _plan_page(request, *, error: str = "", status: int = 200):
    overview = selectors.plan_overview(user_id=request.user.pk)
    context = {
        "overview": overview,
        "quota": selectors.quota_remaining(user_id=request.user.pk),
        "feature_rows": _feature_rows(overview.tiers),
        "error": error,
        "checkout_returned": request.GET.get("checkout") == "done",
        "checkout_returned_message": CHECKOUT_CONFIRMED
        if _just_bought(overview.current)
        else CHECKOUT_RETURNED,
    }
    response = render(request, "me/plan.html", context, status=status)
    if origins := checkout.checkout_origins():
        # An upgrade's POST answers with a redirect to the provider's checkout, and browsers
        # hold that redirect to the page's CSP form-action: the provider's origin must be in
        # it. (The per-response override django.views.decorators.csp.csp_override sets; done
        # here because the links are configuration read per request.)
        config = dict(settings.SECURE_CSP)
        config["form-action"] = [*config.get("form-action", []), *origins]
        response._csp_config = config
    return response


@never_cache
@require_safe
@self_service
def me_plan(request):
    return _plan_page(request)


@require_POST
@self_service
def me_plan_change(request):
    """An upgrade goes to the provider's checkout; a downgrade or cancellation is scheduled."""
    form = PlanChangeForm(request.POST)
    if not form.is_valid():
        return _plan_page(request, error=errors.NOT_AN_UPGRADE, status=400)
    try:
        change = services.plan_change(
            user_id=request.user.pk,
            email=request.user.email,
            tier_slug=form.cleaned_data["tier"],
            user_agent=request_user_agent(request),
        )
    except errors.PlanError as refused:
        return _plan_page(request, error=refused.message, status=400)
    if change.checkout_url is not None:
        return HttpResponseRedirect(change.checkout_url)
    plan = selectors.plan_overview(user_id=request.user.pk).current
    messages.success(
        request,
        SCHEDULED.format(
            name=plan.next_tier_name, date=formats.date_format(plan.period_end, "DATE_FORMAT")
        ),
    )
    return redirect("billing:me_plan")


@require_POST
@self_service
def me_plan_resume(request):
    if services.plan_resume(user_id=request.user.pk):
        messages.success(request, RESUMED)
    else:
        messages.info(request, NOTHING_TO_RESUME)
    return redirect("billing:me_plan")


@never_cache
@require_safe
@self_service
def me_payments(request):
    page = Paginator(selectors.payments_for_user(user_id=request.user.pk), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "me/payments.html", {"page": page})


def _refusal(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@csrf_exempt
@require_POST
def webhook(request, provider: str):
    """A delivery of the payment provider: 200 once applied (or a duplicate, or an event we
    ignore), 400 for a bad signature or body, 409 to be retried later, 404 for a provider that
    is not set up. Every outcome is logged with the event's id, never its content."""
    if provider != settings.BILLING_PROVIDER or not checkout.payments_configured():
        logger.warning("billing webhook for unknown provider %r refused", provider[:32])
        return _refusal(404, "not_found", UNKNOWN_PROVIDER)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > webhooks.MAX_BODY_BYTES:
        return _refusal(413, "too_large", webhooks.TOO_LARGE)
    payload = request.body
    try:
        webhooks.verify_signature(
            payload=payload,
            header=request.headers.get(webhooks.SIGNATURE_HEADER, ""),
            secret=settings.BILLING_WEBHOOK_SECRET,
            tolerance=settings.BILLING_WEBHOOK_TOLERANCE_SECONDS,
        )
        event = webhooks.event_parse(payload)
        result = webhooks.event_apply(provider=provider, event=event)
    except webhooks.WebhookRefused as refused:
        logger.warning("billing webhook from %s refused: %s", provider, refused.reason)
        status = refusals.refusal_answer(refused).view_status
        return _refusal(status, refused.reason, refused.message)
    logger.info(
        "billing webhook %s %s %s: %s",
        provider,
        clean_text(event.type, 100),
        clean_text(event.id, 255),
        result.outcome,
    )
    return JsonResponse({"received": True, "outcome": result.outcome})
