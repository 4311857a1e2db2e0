"""Access to the staff dashboard: staff only; anyone else gets the sign-in page or a 404."""

import functools

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.urls import reverse

# The dashboard's pages: (url name, label), registered by each app's dashboard module and shown
# in this order (pages not listed come last).
DASHBOARD_PAGES: list[tuple[str, str]] = []
NAVIGATION_ORDER = [
    "dashboard:overview",
    "dashboard:users",
    "dashboard:usage",
    "dashboard:reports",
    "dashboard:quotas",
    "dashboard:audit",
    "dashboard:agents",
    "dashboard:monitoring",
]


def dashboard_page(url_name: str, label: str):
    """Register a page in the dashboard's navigation (at import of its views module)."""
    if (url_name, label) not in DASHBOARD_PAGES:
        DASHBOARD_PAGES.append((url_name, label))
        DASHBOARD_PAGES.sort(
            key=lambda page: NAVIGATION_ORDER.index(page[0]) if page[0] in NAVIGATION_ORDER else 99
        )


def staff_required(view):
    """Anonymous visitors are sent to sign in; signed-in non-staff get a 404 (the dashboard's
    existence does not leak). Adds ``dashboard_nav`` for the layout's navigation."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise Http404
        request.dashboard_nav = [
            {
                "url": reverse(name),
                "label": label,
                "current": request.resolver_match.url_name == name.split(":")[-1],
            }
            for name, label in DASHBOARD_PAGES
        ]
        return view(request, *args, **kwargs)

    return wrapper


def dashboard_nav(request) -> dict:
    """Context processor: the dashboard's navigation on its pages (set by staff_required)."""
    return {"dashboard_nav": getattr(request, "dashboard_nav", [])}
