"""``/dashboard/users/<id>/``: one user's 360° page for staff: profile, plan, quota, usage,
agent sessions, payments, quota alerts, recent audit events, the Impersonate button and the
staff actions (witchcraft/dashboard/user_actions.py, which re-renders this page with a form's
errors). Reached from the user links of the other dashboard pages (not in the navigation)."""

from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from billing.forms import QuotaRaiseForm
from billing.selectors import user_with_quota
from usage.dashboard_selectors import today_utc
from witchcraft.dashboard import user360
from witchcraft.dashboard.action_forms import ChangePlanForm, allowed_actions
from witchcraft.platform.staff_pages import staff_required


def render_user_page(request, user, *, forms: dict | None = None, status: int = 200):
    """The page of ``user`` (read by ``user_with_quota``); ``forms`` replaces the blank action
    forms (a refused action shows its errors), answered with ``status``."""
    today = today_utc()
    usage = user360.daily_usage(user_id=user.pk, end=today)
    quota = getattr(user, "quota", None)
    raise_running = (
        quota is not None and quota.raised_until is not None and quota.raised_until > timezone.now()
    )
    plan = user360.current_plan(user_id=user.pk)
    action_forms = {
        "plan_form": ChangePlanForm(current_tier_name=plan.tier if plan else None),
        "raise_form": QuotaRaiseForm(),
        **(forms or {}),
    }
    context = {
        "the_user": user,
        "summary": user360.user_summary(user=user),
        "plan": plan,
        "usage": usage,
        "tokens_chart": usage.tokens.chart("bar"),
        "cost_chart": usage.cost.chart("bar", money=True),
        "chart_days": user360.CHART_DAYS,
        "months": user360.monthly_history(user_id=user.pk, today=today),
        "history_months": user360.HISTORY_MONTHS,
        "sessions": user360.recent_sessions(user_id=user.pk),
        "payments": user360.recent_payments(user_id=user.pk),
        "alerts": user360.recent_alerts(user_id=user.pk),
        "audit_events": user360.recent_audit(user_id=user.pk),
        "token_spend": user360.token_spend(user_id=user.pk),
        "may": allowed_actions(request.user, user),
        "quota_raise": quota if raise_running else None,
        **action_forms,
    }
    return render(request, "dashboard/user.html", context, status=status)


@staff_required
@require_safe
@never_cache
def user_page(request, user_id: int):
    user = user_with_quota(user_id=user_id)
    if user is None:
        raise Http404
    return render_user_page(request, user)
