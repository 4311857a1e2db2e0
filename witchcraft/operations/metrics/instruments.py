"""The request, database and cache instruments (one set per process; summed across gunicorn
workers through ``PROMETHEUS_MULTIPROC_DIR``).

Label values are bounded on purpose: the route is the URL pattern's name (``agents:me_session``),
never the path (``/me/sessions/123/``), the method one of a fixed set, the status its class.
"""

from prometheus_client import Counter, Histogram

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
# Requests no URL pattern answered: static files (WhiteNoise), redirects to HTTPS, unknown paths.
STATIC_ROUTE = "static"
UNMATCHED_ROUTE = "unmatched"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
QUERY_COUNT_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200)
CACHE_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1)

REQUESTS = Counter(
    "witchcraft_http_requests",
    "HTTP requests answered, by method, route name and status class.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "witchcraft_http_request_duration_seconds",
    "Time to answer an HTTP request (every middleware included), by method, route and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
DB_QUERIES = Histogram(
    "witchcraft_db_queries_per_request",
    "Database queries one request ran, by route.",
    ["route"],
    buckets=QUERY_COUNT_BUCKETS,
)
DB_SECONDS = Histogram(
    "witchcraft_db_query_seconds_per_request",
    "Time one request spent in database queries, by route.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
CACHE_SECONDS = Histogram(
    "witchcraft_cache_operation_duration_seconds",
    "Time of a cache operation (get, set, add, incr, delete, ...).",
    ["operation"],
    buckets=CACHE_BUCKETS,
)
CACHE_GETS = Counter(
    "witchcraft_cache_gets",
    "Cache reads, by result (hit or miss).",
    ["result"],
)
