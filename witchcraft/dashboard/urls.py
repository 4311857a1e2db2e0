"""``/dashboard/``: the staff dashboard. Each app contributes its pages (views in its
``dashboard.py``, registered in the navigation with
``witchcraft.platform.staff_pages.dashboard_page``)."""

from django.urls import path

from accounts import dashboard as accounts_dashboard
from agents import dashboard as agents_dashboard
from billing import dashboard as billing_dashboard
from usage import dashboard as usage_dashboard
from usage import dashboard_reports
from witchcraft.dashboard import archive_search, user_actions
from witchcraft.dashboard import directory as dashboard_directory
from witchcraft.dashboard import user_page as dashboard_user
from witchcraft.operations import monitoring

app_name = "dashboard"

urlpatterns = [
    path("", usage_dashboard.overview, name="overview"),
    path("usage/", usage_dashboard.usage, name="usage"),
    path("usage.csv", usage_dashboard.usage_csv, name="usage_csv"),
    path("usage/requests/", usage_dashboard.usage_requests, name="usage_requests"),
    path("reports/", dashboard_reports.monthly_report, name="reports"),
    path("reports.csv", dashboard_reports.monthly_report_csv, name="reports_csv"),
    path("quotas/", billing_dashboard.quotas, name="quotas"),
    path(
        "quotas/alerts/<int:alert_id>/acknowledge/",
        billing_dashboard.alert_acknowledge,
        name="alert_acknowledge",
    ),
    path("audit/", accounts_dashboard.audit_trail, name="audit"),
    path("audit.csv", accounts_dashboard.audit_csv, name="audit_csv"),
    path("agents/", agents_dashboard.agents, name="agents"),
    path("agents/<int:session_id>/", agents_dashboard.agent_session, name="agent_session"),
    path("monitoring/", monitoring.monitoring, name="monitoring"),
    path("archive/", archive_search.archive_search, name="archive"),
    path("users/", dashboard_directory.users, name="users"),
    path("users/<int:user_id>/", dashboard_user.user_page, name="user"),
    # Staff actions on a user (the 360° page's "Actions" section, the quota list).
    path("users/<int:user_id>/actions/plan/", user_actions.change_plan, name="user_change_plan"),
    path(
        "users/<int:user_id>/actions/quota-reset/",
        user_actions.reset_quota,
        name="user_reset_quota",
    ),
    path(
        "users/<int:user_id>/actions/quota-raise/",
        user_actions.raise_limit,
        name="user_raise_limit",
    ),
    path(
        "users/<int:user_id>/actions/tokens-revoke/",
        user_actions.revoke_tokens,
        name="user_revoke_tokens",
    ),
    path(
        "users/<int:user_id>/actions/sessions-end/",
        user_actions.end_sessions,
        name="user_end_sessions",
    ),
    path(
        "users/<int:user_id>/actions/verification-resend/",
        user_actions.resend_verification,
        name="user_resend_verification",
    ),
    path(
        "users/<int:user_id>/actions/deactivate/",
        user_actions.deactivate,
        name="user_deactivate",
    ),
    path(
        "users/<int:user_id>/actions/reactivate/",
        user_actions.reactivate,
        name="user_reactivate",
    ),
]
