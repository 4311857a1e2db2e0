"""``GET /metrics``: Prometheus' text format, for an allowed scraper only (else a 404)."""

from __future__ import annotations

import os

from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from witchcraft.operations.metrics import access, instruments  # noqa: F401 - instruments registers them
from witchcraft.operations.metrics.key_metrics import KeyMetricsCollector


class _ThisProcess:
    """Forwards the process-wide registry (runserver, tests: no multiprocess folder)."""

    def collect(self):
        yield from REGISTRY.collect()


def registry() -> CollectorRegistry:
    """What one scrape reports: every worker's counters (or this process's) and the key
    metrics, read now."""
    scrape = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(scrape)
    else:
        scrape.register(_ThisProcess())
    scrape.register(KeyMetricsCollector())
    return scrape


@csrf_exempt  # it changes nothing; a CSRF 403 to a POST would give the path away
@never_cache
def metrics(request):
    # Who asks comes first: to anyone else the path does not exist, whatever the method.
    if not access.may_scrape(request):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
