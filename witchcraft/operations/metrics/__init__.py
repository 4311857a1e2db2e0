"""``/metrics`` for Prometheus: what every request cost, and the seed's key metrics.

- :mod:`~witchcraft.operations.metrics.instruments`: the counters and histograms requests update;
- :mod:`~witchcraft.operations.metrics.middleware`: times each request, its database queries;
- :mod:`~witchcraft.operations.metrics.cache`: cache backends that time their operations;
- :mod:`~witchcraft.operations.metrics.key_metrics`: the seed's "Key Metrics" as gauges, read
  at scrape time from the roll-ups (the same selectors as the monitoring page);
- :mod:`~witchcraft.operations.metrics.access`: who may scrape (a bearer token or an address
  allow-list);
- :mod:`~witchcraft.operations.metrics.views`: the endpoint.

Under gunicorn every worker counts its own requests; ``witchcraft/gunicorn.conf.py`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder so that a scrape answered by any worker adds up
all of them (prometheus_client's multiprocess mode). Elsewhere (runserver, tests) the counters
live in the process.
"""
