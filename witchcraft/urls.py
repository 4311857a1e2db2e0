from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from witchcraft.api import api
from witchcraft.operations import health
from witchcraft.operations.metrics.views import metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),  # Prometheus; 404 unless allowed (metrics/access.py)
    path("admin/", admin.site.urls),
    # Impersonation: POST-only acquire / release views (accounts/impersonation.py).
    path("hijack/", include("hijack.urls")),
    path("api/v1/", api.urls),
    # The unversioned names people type lead to the current version's docs and schema.
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    path("api/", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    path("dashboard/", include("witchcraft.dashboard.urls")),
    # The home page is the user's own overview (which sends visitors to sign in).
    path("", RedirectView.as_view(pattern_name="selfservice:me"), name="home"),
    path("", include("witchcraft.selfservice.urls")),
    path("", include("accounts.urls")),
    path("", include("usage.urls")),
    path("", include("agents.urls")),
    path("", include("billing.urls")),
]
