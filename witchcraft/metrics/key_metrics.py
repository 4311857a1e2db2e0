"""The seed's "Key Metrics to Track" as Prometheus gauges, computed when Prometheus scrapes.

Read through the monitoring page's selectors (witchcraft/monitoring.py): today's and this
month's roll-ups, the quota index, the audit log's time index, the server's own statistics;
never the raw usage rows, so a scrape stays cheap however much traffic there was.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from prometheus_client.core import GaugeMetricFamily

from accounts.models import AuditLog
from witchcraft import monitoring, rls
from witchcraft.embedded_db import EmbeddedServerError

logger = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 5000  # a scrape never holds the database for long


def read(*, now: datetime) -> dict:
    """Every key metric, read in the service context (the queries cross users)."""
    with transaction.atomic(), rls.service_context(request_id="metrics-scrape"):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)", [str(STATEMENT_TIMEOUT_MS)]
            )
            cursor.execute("SELECT pg_database_size(current_database())")
            (database_bytes,) = cursor.fetchone()
        return {
            "today": monitoring.usage_today(now=now),
            "monthly_users": monitoring.active_users_this_month(now=now),
            "quotas": monitoring.quota_usage(),
            "failed_logins": AuditLog.objects.filter(
                event_type="login_failed", created_at__gte=now - timedelta(minutes=1)
            ).count(),
            "database_bytes": database_bytes,
            "connections": monitoring.connections(),
        }


def _gauge(name: str, documentation: str, value: float, labels: dict | None = None):
    family = GaugeMetricFamily(name, documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def families(values: dict | None, *, seconds: float) -> list[GaugeMetricFamily]:
    """The gauges for ``values`` (None when the database could not be read: only ``up``)."""
    up = [
        _gauge(
            "witchcraft_key_metrics_up",
            "1 when the key metrics below could be read from the database, else 0.",
            1 if values else 0,
        ),
        _gauge(
            "witchcraft_key_metrics_read_seconds",
            "Time this scrape spent reading the key metrics.",
            seconds,
        ),
    ]
    if not values:
        return up
    today, quotas, conns = values["today"], values["quotas"], values["connections"]
    active = GaugeMetricFamily(
        "witchcraft_active_users",
        "Users with AI requests today (UTC) and this month.",
        labels=["period"],
    )
    active.add_metric(["day"], today["users"])
    active.add_metric(["month"], values["monthly_users"])
    quota_users = GaugeMetricFamily(
        "witchcraft_quota_users",
        "Users whose quota is at or over 80 % (warning) and 100 % (exceeded).",
        labels=["level"],
    )
    quota_users.add_metric(["warning"], quotas["warning"])
    quota_users.add_metric(["exceeded"], quotas["exceeded"])
    in_use = GaugeMetricFamily(
        "witchcraft_database_connections",
        "Connections to this database by state (pg_stat_activity).",
        labels=["state"],
    )
    for state in ("total", "active", "idle_in_transaction"):
        in_use.add_metric([state], conns[state])
    limits = GaugeMetricFamily(
        "witchcraft_database_connections_limit",
        "The connection budget (DATABASE_MAX_CONNECTIONS) and the server's max_connections.",
        labels=["limit"],
    )
    limits.add_metric(["configured"], conns["max"])
    limits.add_metric(["server"], conns["server_max"])
    latency_ms = today["avg_latency_ms"]
    return [
        *up,
        active,
        _gauge(
            "witchcraft_ai_requests_today",
            "AI requests recorded today (UTC), from the daily roll-up.",
            today["requests"],
        ),
        _gauge(
            "witchcraft_ai_requests_per_second",
            "Today's AI requests divided by the seconds elapsed today (UTC).",
            today["requests_per_second"],
        ),
        _gauge(
            "witchcraft_ai_failed_requests_today",
            "AI requests that failed today (UTC).",
            today["errors"],
        ),
        _gauge(
            "witchcraft_ai_failed_request_ratio",
            "Failed share of today's AI requests (alert above 0.05).",
            today["error_rate"],
        ),
        _gauge(
            "witchcraft_ai_response_time_seconds_average",
            "Average AI response time today (NaN before the first request).",
            float("nan") if latency_ms is None else float(latency_ms) / 1000,
        ),
        quota_users,
        _gauge("witchcraft_quotas", "Users with a quota.", quotas["total"]),
        _gauge(
            "witchcraft_quota_usage_ratio_max",
            "The highest quota usage ratio of any user (1 = 100 %).",
            float(quotas["highest"] or 0),
        ),
        _gauge(
            "witchcraft_failed_logins_last_minute",
            "Failed sign-ins in the last 60 seconds (alert above 10).",
            values["failed_logins"],
        ),
        _gauge(
            "witchcraft_database_size_bytes",
            "Size of this database on disk.",
            values["database_bytes"],
        ),
        _gauge(
            "witchcraft_database_capacity_bytes",
            "The plan's database capacity (DATABASE_CAPACITY_BYTES; alert above 80 %).",
            monitoring.capacity_bytes(),
        ),
        in_use,
        limits,
        _gauge(
            "witchcraft_database_connection_usage_ratio",
            "Connections in use over the connection budget (DATABASE_MAX_CONNECTIONS).",
            conns["total"] / conns["max"] if conns["max"] else 0.0,
        ),
        _gauge(
            "witchcraft_database_pool_size",
            "Pool size per web worker (DATABASE_POOL_SIZE), 0 when not pooling.",
            settings.DATABASE_POOL_SIZE if getattr(settings, "DATABASE_POOL", False) else 0,
        ),
    ]


class KeyMetricsCollector:
    """A prometheus_client collector that reads the key metrics once per scrape."""

    def __init__(self, *, now: datetime | None = None) -> None:
        self.now = now

    def collect(self):
        started = time.perf_counter()
        try:
            values = read(now=self.now or datetime.now(UTC))
        except (DatabaseError, EmbeddedServerError):
            logger.exception("metrics: the key metrics could not be read")
            values = None
        yield from families(values, seconds=time.perf_counter() - started)
