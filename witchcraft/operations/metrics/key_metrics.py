"""The seed's "Key Metrics to Track", and a gauge for each of its "Alerts to Set Up", as
Prometheus gauges computed when Prometheus scrapes.

Read through the monitoring page's selectors (witchcraft/operations/monitoring/): today's and this
month's roll-ups, the quota index, the audit log's time index, the last hour of the usage log
by its time index (monitoring_request_windows()), the server's own statistics and
pg_stat_statements; never a broad scan of the raw usage rows, so a scrape stays cheap however
much traffic there was. The backups' state (point-in-time recovery) is the last backup runs'
(witchcraft.operations.pitr.status: one query). deploy/prometheus/witchcraft-rules.yml alerts on
these gauges.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from prometheus_client.core import GaugeMetricFamily

from accounts.models import AuditLog
from usage.models import UsageStatus
from witchcraft.operations import monitoring
from witchcraft.operations.monitoring import statements, windows
from witchcraft.operations.pitr.status import STALE, BackupStatus, backup_status
from witchcraft.platform import replica, rls
from witchcraft.platform.embedded_db import EmbeddedServerError
from witchcraft.platform.replica import state as replica_state

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
            "windows": windows.request_windows(now=now),
            "slow": statements.slow_queries(),
            "monthly_users": monitoring.active_users_this_month(now=now),
            "quotas": monitoring.quota_usage(),
            "failed_logins": AuditLog.objects.filter(
                event_type="login_failed", created_at__gte=now - timedelta(minutes=1)
            ).count(),
            "database_bytes": database_bytes,
            "connections": monitoring.connections(),
            "backup": backup_status(),
            "replica": replica.replica_status(),
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
    capacity = monitoring.capacity_bytes()
    return [
        *up,
        active,
        *_request_families(values["windows"]),
        *_slow_families(values["slow"]),
        *backup_families(values["backup"]),
        *replica_families(values["replica"]),
        _gauge(
            "witchcraft_ai_requests_today",
            "AI requests recorded today (UTC), from the daily roll-up.",
            today["requests"],
        ),
        _gauge(
            "witchcraft_ai_unsuccessful_requests_today",
            "AI requests of today (UTC) that did not succeed: failed, cancelled or rejected.",
            today["unsuccessful"],
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
            capacity,
        ),
        _gauge(
            "witchcraft_database_capacity_usage_ratio",
            "Database size over DATABASE_CAPACITY_BYTES (alert above 0.8).",
            values["database_bytes"] / capacity if capacity else 0.0,
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


def _request_families(request_windows: dict) -> list[GaugeMetricFamily]:
    """AI requests over the last 1, 5 and 60 minutes (witchcraft.operations.monitoring.windows)."""
    counts = GaugeMetricFamily(
        "witchcraft_ai_requests_recent",
        "AI requests recorded in the last minute(s), by window (1m, 5m, 60m) and status.",
        labels=["window", "status"],
    )
    per_second = GaugeMetricFamily(
        "witchcraft_ai_requests_per_second",
        "AI requests per second over the window (every status).",
        labels=["window"],
    )
    ratio = GaugeMetricFamily(
        "witchcraft_ai_failed_request_ratio",
        "Failed (error, timeout) over succeeded + failed in the window; cancelled and rejected"
        " requests are on neither side (alert above 0.05 over 5m).",
        labels=["window"],
    )
    for name, window in request_windows.items():
        for status in UsageStatus.values:
            counts.add_metric([name, status], window.by_status.get(status, 0))
        per_second.add_metric([name], window.requests_per_second)
        ratio.add_metric([name], window.error_rate)
    return [counts, per_second, ratio]


def _slow_families(slow: dict) -> list[GaugeMetricFamily]:
    """Slow queries running now, and pg_stat_statements' slow statements where it answers."""
    state = GaugeMetricFamily(
        "witchcraft_pg_stat_statements_available",
        "1 when pg_stat_statements answers in this database, else 0 (state: ok, not_loaded,"
        " absent).",
        labels=["state"],
    )
    state.add_metric([slow["statements_state"]], 1 if slow["statements_state"] == "ok" else 0)
    return [
        _gauge(
            "witchcraft_slow_queries_running",
            "Statements of this database running longer than 1 s now (alert above 0).",
            slow["count"],
        ),
        state,
        _gauge(
            "witchcraft_slow_statements",
            "Statements of this database slower than 1 s on average since pg_stat_statements"
            " was reset (0 where it does not answer).",
            slow["statements_count"],
        ),
        _gauge(
            "witchcraft_slow_statement_calls",
            "Calls of those statements (their sum; alert when it grows).",
            sum(statement["calls"] for statement in slow["statements"]),
        ),
    ]


def _timestamp(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def backup_families(status: BackupStatus) -> list[GaugeMetricFamily]:
    """Point-in-time recovery's state: enabled and stale always; each figure only when it is
    known (no base backup yet, no drill yet: no gauge, rather than a made-up 0). With
    PITR_ENABLED off, only those two."""
    found = [
        _gauge(
            "witchcraft_backup_enabled",
            "1 when point-in-time recovery is on (PITR_ENABLED), else 0.",
            1 if status.enabled else 0,
        ),
        _gauge(
            "witchcraft_backup_stale",
            "1 when the last base backup is older than BACKUP_STALE_HOURS or WAL archiving is"
            " further behind than WAL_STALE_MINUTES (or neither was ever seen), else 0.",
            1 if status.state == STALE else 0,
        ),
    ]
    if not status.enabled:
        return found
    drill = status.last_drill
    drill_ok = None
    if drill is not None and drill.status != drill.Status.RUNNING:
        drill_ok = 1 if drill.status == drill.Status.SUCCEEDED else 0
    succeeded = status.last_drill_ok
    figures = (
        (
            "witchcraft_backup_base_age_seconds",
            "Seconds since the end of the last base backup (alert above 26 h).",
            status.base_backup_age_seconds,
        ),
        (
            "witchcraft_backup_base_backups",
            "Base backups kept (the catalogue, as the last WAL archiving run read it).",
            status.backups if status.last_base_backup_end is not None else None,
        ),
        (
            "witchcraft_backup_wal_behind_seconds",
            "Seconds since the time up to which WAL is known to be received (alert above 300).",
            status.wal_behind_seconds,
        ),
        (
            "witchcraft_backup_wal_lag_bytes",
            "Bytes of WAL the server has written that the receiver has not written yet.",
            status.lag_bytes,
        ),
        (
            "witchcraft_backup_recovery_window_start_timestamp_seconds",
            "The earliest time a restore can reach: the end of the oldest base backup kept.",
            _timestamp(status.oldest_restorable),
        ),
        (
            "witchcraft_backup_recovery_window_end_timestamp_seconds",
            "The latest time a restore can reach: WAL received up to here.",
            _timestamp(status.newest_restorable),
        ),
        (
            "witchcraft_backup_last_wal_archived_timestamp_seconds",
            "When the newest WAL segment in the archive was archived.",
            _timestamp(status.last_wal_archived_at),
        ),
        (
            "witchcraft_backup_drill_last_success_timestamp_seconds",
            "When the last restore drill that succeeded finished.",
            None
            if succeeded is None
            else _timestamp(succeeded.finished_at or succeeded.started_at),
        ),
        (
            "witchcraft_backup_drill_last_ok",
            "1 when the last restore drill succeeded, 0 when it failed.",
            drill_ok,
        ),
    )
    found += [_gauge(name, text, value) for name, text, value in figures if value is not None]
    return found


def replica_families(status: replica.ReplicaStatus) -> list[GaugeMetricFamily]:
    """The read replica's gauges; none without DATABASE_REPLICA_URL. (Reads served by each
    server are the ``witchcraft_replica_reads_total`` counter.)"""
    if status.state == replica_state.ABSENT:
        return []
    found = [
        _gauge(
            "witchcraft_replica_up",
            "1 when the read replica answers as a standby of the primary, else 0.",
            0 if status.state == replica_state.DOWN else 1,
        ),
        _gauge(
            "witchcraft_replica_lagging",
            "1 when the replica is more than REPLICA_MAX_LAG_SECONDS behind (pages read the"
            " primary), else 0.",
            1 if status.state == replica_state.LAGGING else 0,
        ),
    ]
    if status.lag_bytes is not None:
        found.append(
            _gauge(
                "witchcraft_replica_lag_bytes",
                "WAL the replica has still to replay: the primary's position minus its own.",
                status.lag_bytes,
            )
        )
    if status.lag_seconds is not None:
        found.append(
            _gauge(
                "witchcraft_replica_lag_seconds",
                "Seconds since the last commit the replica replayed (0 when it has replayed all).",
                status.lag_seconds,
            )
        )
    return found


class KeyMetricsCollector:
    """A prometheus_client collector that reads the key metrics once per scrape."""

    def __init__(self, *, now: datetime | None = None) -> None:
        self.now = now

    def collect(self):
        started = time.perf_counter()
        try:
            values = read(now=self.now or monitoring.clock())
        except (DatabaseError, EmbeddedServerError):
            logger.exception("metrics: the key metrics could not be read")
            values = None
        yield from families(values, seconds=time.perf_counter() - started)
