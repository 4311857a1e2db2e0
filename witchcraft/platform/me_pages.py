"""The signed-in user's own pages under ``/me/``: access and their shared navigation.

Each app's views register their page with :func:`self_service_page`; the layout
(``templates/me/base.html``) shows them in ``NAVIGATION_ORDER``. Everything on these pages runs
in the request's row-level-security context: a user only ever reads their own rows.
"""

import functools

from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

SELF_SERVICE_PAGES: list[tuple[str, str]] = []
NAVIGATION_ORDER = [
    "selfservice:me",
    "usage:me_usage",
    "agents:me_sessions",
    "billing:me_plan",
    "billing:me_payments",
    "accounts:me_tokens",
    "accounts:security",
    "accounts:me_profile",
    "selfservice:me_export",
]


def register_page(url_name: str, label: str) -> None:
    """Put a page in the self-service navigation (at import of its views module)."""
    if (url_name, label) not in SELF_SERVICE_PAGES:
        SELF_SERVICE_PAGES.append((url_name, label))
        SELF_SERVICE_PAGES.sort(
            key=lambda page: NAVIGATION_ORDER.index(page[0]) if page[0] in NAVIGATION_ORDER else 99
        )


def self_service(view):
    """Signed-in users only (anonymous visitors are sent to sign in); adds ``me_nav``."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        match = request.resolver_match
        current = f"{match.namespace}:{match.url_name}" if match else ""
        request.me_nav = [
            {"url": reverse(name), "label": label, "current": current == name}
            for name, label in SELF_SERVICE_PAGES
        ]
        return view(request, *args, **kwargs)

    return wrapper


def me_nav(request) -> dict:
    """Context processor: the self-service navigation on the ``/me/`` pages."""
    return {"me_nav": getattr(request, "me_nav", [])}


def impersonating(request) -> bool:
    """Whether staff are viewing this page as the user (django-hijack)."""
    return bool(getattr(request.user, "is_hijacked", False))
