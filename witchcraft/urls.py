from django.contrib import admin
from django.urls import include, path

from witchcraft import health
from witchcraft.api import api

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Impersonation: POST-only acquire / release views (accounts/impersonation.py).
    path("hijack/", include("hijack.urls")),
    path("api/v1/", api.urls),
    path("dashboard/", include("witchcraft.dashboard_urls")),
    path("", include("accounts.urls")),
    path("", include("usage.urls")),
    path("", include("agents.urls")),
    path("", include("billing.urls")),
]
