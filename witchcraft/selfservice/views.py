"""The self-service pages that span domains (thin views): ``/me/``, the overview, and
``/me/export/``, the user's data (every domain's rows of theirs, as one JSON file)."""

from __future__ import annotations

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import audit
from usage.dashboard_selectors import today_utc
from witchcraft.platform import rls
from witchcraft.platform.me_pages import impersonating, register_page, self_service
from witchcraft.selfservice import export, overview

register_page("selfservice:me", "Overview")
register_page("selfservice:me_export", "Your data")

# Built by the billing and agents pages; plain paths so these pages do not depend on them.
PLAN_PATH = "/me/plan/"
SESSION_PATH = "/me/sessions/{id}/"
NO_QUOTA = "No quota is set for your account."


@self_service
def me_overview(request):
    today = today_utc()
    the_overview = overview.me_overview(user_id=request.user.pk, today=today)
    context = {
        "overview": the_overview,
        "today": today,
        "plan_path": PLAN_PATH,
        "no_quota": NO_QUOTA,
        "sessions": [
            (session, SESSION_PATH.format(id=session.pk)) for session in the_overview.sessions
        ],
    }
    return render(request, "me/overview.html", context)


EXPORT_NOT_WHILE_IMPERSONATING = "Data cannot be downloaded while impersonating a user."


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@self_service
def export_page(request):
    """What the export holds; a POST downloads it (one JSON file, streamed)."""
    if request.method != "POST":
        return render(request, "me/export.html", {"sections": export.SECTIONS})
    if impersonating(request):
        messages.error(request, EXPORT_NOT_WHILE_IMPERSONATING)
        return redirect("selfservice:me_export")
    data = export.export_start(
        user_id=request.user.pk,
        request_id=getattr(request, "request_id", ""),
        ip=rls.client_ip(request),
        user_agent=audit.request_user_agent(request),
    )
    response = StreamingHttpResponse(data.chunks(), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{data.filename}"'
    return response
