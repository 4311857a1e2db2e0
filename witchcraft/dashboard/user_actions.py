"""``/dashboard/users/<id>/actions/...``: what staff do to a user from the 360° page (its
"Actions" section) and from the quota list: change the plan, reset the quota, raise a limit
until a date, revoke every API token, sign out every device, resend the verification mail,
deactivate or reactivate. Thin views: each checks the action's permission (403 without it),
validates its form (the page again with the errors, nothing written), calls one service (which
audits it with the staff member as actor) and redirects back with a message."""

from __future__ import annotations

import functools

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import audit, staff_actions
from billing import errors as billing_errors
from billing import services as billing_services
from billing.forms import QuotaRaiseForm
from billing.selectors import user_with_quota
from witchcraft.dashboard.action_forms import (
    PERMISSIONS,
    ChangePlanForm,
)
from witchcraft.dashboard.user_page import render_user_page
from witchcraft.platform import db_errors, rls
from witchcraft.platform.staff_pages import staff_required

# Where an action may send the staff member back to (the form's hidden "back" field).
BACK_TO_QUOTAS = "quotas"


def _back(request, user) -> str:
    if request.POST.get("back") == BACK_TO_QUOTAS:
        return reverse("dashboard:quotas") + "#approaching"
    return reverse("dashboard:user", args=[user.pk]) + "#actions"


def staff_action(action: str):
    """Staff only (404 for others), POST only, the action's permission (403 without it), the
    user read (404 for an unknown id); the view gets the user."""

    def decorate(view):
        @staff_required
        @require_POST
        @functools.wraps(view)
        def wrapper(request, user_id: int):
            if not request.user.has_perm(PERMISSIONS[action]):
                raise PermissionDenied
            user = user_with_quota(user_id=user_id)
            if user is None:
                raise Http404
            return view(request, user)

        return wrapper

    return decorate


def _refused(request, user, form_name: str, form, message: str):
    """A refused form: on the quota list a message, on the 360° page the page with the error."""
    if request.POST.get("back") == BACK_TO_QUOTAS:
        messages.error(request, message)
        return redirect(_back(request, user))
    if message:
        form.add_error(None, message)
    return render_user_page(request, user, forms={form_name: form}, status=400)


def _form_errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


@staff_action("change_plan")
def change_plan(request, user):
    form = ChangePlanForm(request.POST)
    if not form.is_valid():
        return _refused(request, user, "plan_form", form, _form_errors(form))
    try:
        billing_services.subscription_change_tier(
            user_id=user.pk,
            tier_slug=form.cleaned_data["tier"],
            user_agent=audit.request_user_agent(request),
        )
    except billing_errors.QuotaError as refused:
        return _refused(request, user, "plan_form", form, refused.message)
    messages.success(request, f"{user.email} is now on {form.cleaned_data['tier']}.")
    return redirect(_back(request, user))


@staff_action("reset_quota")
def reset_quota(request, user):
    try:
        reset = billing_services.quota_reset(
            user_id=user.pk, user_agent=audit.request_user_agent(request)
        )
    except billing_errors.QuotaError as refused:
        raise PermissionDenied(refused.message) from None
    if reset:
        messages.success(request, f"The quota of {user.email} was reset.")
    else:
        messages.info(request, f"{user.email} has no quota to reset.")
    return redirect(_back(request, user))


@staff_action("raise_limit")
def raise_limit(request, user):
    form = QuotaRaiseForm(request.POST)
    if not form.is_valid():
        return _refused(request, user, "raise_form", form, _form_errors(form))
    data = form.cleaned_data
    try:
        billing_services.quota_raise_limit(
            user_id=user.pk,
            tokens_limit=data["tokens_limit"],
            cost_limit=data["cost_limit"],
            until=data["until"],
        )
    except billing_errors.QuotaError as refused:
        if refused.code == db_errors.FORBIDDEN:
            raise PermissionDenied(refused.message) from None
        return _refused(request, user, "raise_form", form, refused.message)
    messages.success(
        request,
        f"The limits of {user.email} are raised until {data['until']:%Y-%m-%d %H:%M} UTC.",
    )
    return redirect(_back(request, user))


@staff_action("revoke_tokens")
def revoke_tokens(request, user):
    revoked = staff_actions.user_tokens_revoke_all(
        user_id=user.pk, user_agent=audit.request_user_agent(request)
    )
    messages.success(request, f"{revoked} API token{'s' if revoked != 1 else ''} revoked.")
    return redirect(_back(request, user))


@staff_action("end_sessions")
def end_sessions(request, user):
    ended = staff_actions.user_sessions_end(
        user_id=user.pk, user_agent=audit.request_user_agent(request)
    )
    messages.success(request, f"Signed out of {ended} device{'s' if ended != 1 else ''}.")
    return redirect(_back(request, user))


@staff_action("resend_verification")
def resend_verification(request, user):
    try:
        staff_actions.user_verification_resend(
            user=user, staff_id=request.user.pk, ip=rls.client_ip(request)
        )
    except staff_actions.AccountActionError as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, f"A new verification link is on its way to {user.email}.")
    return redirect(_back(request, user))


def _set_active(request, user, *, active: bool):
    try:
        changed = staff_actions.user_set_active(
            user_id=user.pk, active=active, staff_id=request.user.pk
        )
    except staff_actions.AccountActionError as refused:
        if refused.code == db_errors.FORBIDDEN:
            raise PermissionDenied(refused.message) from None
        messages.error(request, refused.message)
        return redirect(_back(request, user))
    state = "reactivated" if active else "deactivated"
    if changed:
        messages.success(request, f"The account of {user.email} was {state}.")
    else:
        messages.info(request, f"The account of {user.email} already was {state}.")
    return redirect(_back(request, user))


@staff_action("set_active")
def deactivate(request, user):
    return _set_active(request, user, active=False)


@staff_action("set_active")
def reactivate(request, user):
    return _set_active(request, user, active=True)
