"""``/dashboard/monitoring/``: the seed's "Key Metrics" and "Alerts to Set Up" for staff.

Every number comes from a roll-up (``ai_usage_daily``, ``ai_usage_monthly``), an indexed
range (``audit_logs`` by ``created_at``, ``user_quotas`` by ``usage_ratio``, the last hour of
``ai_usage_requests`` by ``created_at``: :mod:`.windows`) or the server's own statistics
(``pg_stat_activity``, ``pg_stat_statements``: :mod:`.statements`, sizes); never a broad scan of
``ai_usage_requests``. The background work (the worker's heartbeat, the queue, the last
maintenance runs) comes from witchcraft.operations.jobs; the backups' state (point-in-time
recovery) from witchcraft.operations.pitr.status (the last backup runs: one query).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncMinute
from django.shortcuts import render

from accounts.models import AuditLog
from billing.models import UserQuota
from usage.models import AIUsageDaily, AIUsageMonthly
from witchcraft.operations import jobs
from witchcraft.operations.monitoring.statements import SLOW_QUERY_SECONDS, slow_queries
from witchcraft.operations.monitoring.windows import ALERT_WINDOW, request_windows
from witchcraft.operations.pitr.status import STALE, BackupStatus, backup_status
from witchcraft.platform import replica
from witchcraft.platform.durations import duration_text
from witchcraft.platform.staff_pages import dashboard_page, staff_required

dashboard_page("dashboard:monitoring", "Monitoring")

GIB = 1024**3
MB = 1024**2
KB = 1024
# The seed's "Table Sizes (Estimated for 1000 Active Users)": storage per month.
TABLE_ESTIMATES: list[tuple[str, int]] = [
    ("users", 1 * MB),
    ("access_tokens", 500 * KB),
    ("ai_usage_requests", 100 * MB),
    ("ai_usage_daily", 5 * MB),
    ("ai_usage_monthly", 200 * KB),
    ("agent_sessions", 2 * MB),
    ("agent_messages", 50 * MB),
    ("audit_logs", 10 * MB),
]
ESTIMATE_USERS = 1000
# The seed's thresholds.
QUOTA_WARNING_RATIO = Decimal("0.8")
QUOTA_EXCEEDED_RATIO = Decimal("1")
FAILED_LOGINS_PER_MINUTE = 10
FAILED_LOGIN_WINDOW = timedelta(minutes=10)
ERROR_RATE_LIMIT = 0.05
DATABASE_SIZE_LIMIT = 0.8

OK, WARNING, FIRING = "OK", "warning", "firing"


def capacity_bytes() -> int:
    return getattr(settings, "DATABASE_CAPACITY_BYTES", 8 * GIB)


def pool_size() -> int:
    return getattr(settings, "DATABASE_POOL_SIZE", 20)


def max_connections() -> int:
    return getattr(settings, "DATABASE_MAX_CONNECTIONS", 100)


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str  # the seed's colour: critical (red) or warning (yellow)
    threshold: str
    measured: str
    state: str  # OK, warning (half-way to the threshold), firing


def _state(value: float, limit: float, *, strictly_above: bool = True) -> str:
    """firing past ``limit``; warning from half of it; OK below."""
    if value > limit if strictly_above else value >= limit:
        return FIRING
    if limit > 0 and value >= limit / 2:
        return WARNING
    return OK


# --- selectors --------------------------------------------------------------------------------


def usage_today(*, now: datetime) -> dict:
    """Today's (UTC) totals from ai_usage_daily: users, requests, latency, and ``unsuccessful``
    (the roll-up's error_count: every request that did not succeed, cancelled and rejected
    ones included; the error rate comes from :func:`request_windows`)."""
    totals = AIUsageDaily.objects.filter(usage_date=now.date()).aggregate(
        users=Count("user", distinct=True),
        requests=Sum("request_count"),
        errors=Sum("error_count"),
        latency_sum=Sum("latency_ms_sum"),
        latency_count=Sum("latency_count"),
    )
    return {
        "users": totals["users"],
        "requests": totals["requests"] or 0,
        "unsuccessful": totals["errors"] or 0,
        "avg_latency_ms": (
            totals["latency_sum"] / totals["latency_count"] if totals["latency_count"] else None
        ),
    }


def active_users_this_month(*, now: datetime) -> int:
    return AIUsageMonthly.objects.filter(
        year=now.year, month=now.month, request_count__gt=0
    ).count()


def quota_usage() -> dict:
    """Users at or over 80 % and 100 % (idx_quotas_approaching_limit) and all quotas."""
    near = UserQuota.objects.filter(usage_ratio__gte=QUOTA_WARNING_RATIO).aggregate(
        warning=Count("pk"),
        exceeded=Count("pk", filter=Q(usage_ratio__gte=QUOTA_EXCEEDED_RATIO)),
        highest=Max("usage_ratio"),
    )
    total = UserQuota.objects.count()
    return {
        "total": total,
        "warning": near["warning"],
        "exceeded": near["exceeded"],
        "highest": near["highest"],
        "share_warning": near["warning"] / total if total else 0.0,
    }


def failed_login_peak(*, now: datetime) -> dict:
    """The busiest minute of ``login_failed`` rows in the last ten minutes (the created_at
    index serves the range): ``{"minute": datetime | None, "failures": int}``."""
    peak = (
        AuditLog.objects.filter(
            event_type="login_failed", created_at__gte=now - FAILED_LOGIN_WINDOW
        )
        .annotate(minute=TruncMinute("created_at"))
        .values("minute")
        .annotate(failures=Count("id"))
        .order_by("-failures", "-minute")
        .first()
    )
    return peak or {"minute": None, "failures": 0}


def database_sizes() -> dict:
    """The database's size and each seed table's (partitions summed) with row estimates."""
    names = [name for name, _ in TABLE_ESTIMATES]
    with replica.read_connection().cursor() as cursor:
        # pg_partition_tree returns no row for a plain table: the table itself is added.
        cursor.execute(
            "WITH rels AS ("
            "   SELECT t.name, t.n, r.relid FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, n)"
            "   CROSS JOIN LATERAL (SELECT to_regclass('public.' || t.name) AS relid"
            "     UNION SELECT p.relid FROM pg_partition_tree(to_regclass('public.' || t.name)) p"
            "   ) r WHERE r.relid IS NOT NULL)"
            " SELECT rels.name, coalesce(sum(pg_total_relation_size(rels.relid)), 0),"
            " coalesce(sum(greatest(c.reltuples, 0)), 0)"
            " FROM rels JOIN pg_class c ON c.oid = rels.relid"
            " GROUP BY rels.name, rels.n ORDER BY rels.n",
            [names],
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT pg_database_size(current_database())")
        (database,) = cursor.fetchone()
    estimates = dict(TABLE_ESTIMATES)
    tables = [
        {
            "name": name,
            "bytes": int(size),
            "rows": int(rows_estimate),
            "estimate_per_month": estimates[name],
            "months_of_estimate": int(size) / estimates[name],
        }
        for name, size, rows_estimate in rows
    ]
    return {
        "database": database,
        "capacity": capacity_bytes(),
        "share": database / capacity_bytes() if capacity_bytes() else 0.0,
        "tables": tables,
        "estimate_total": sum(estimates.values()),
    }


def connections() -> dict:
    """Connections to this database by state (pg_stat_activity) and the server's limit."""
    with connection.cursor() as cursor:
        cursor.execute(  # SECURITY DEFINER: the runtime role sees no other connection
            "SELECT total, active, idle_in_transaction, server_max FROM monitoring_connections()"
        )
        total, active, idle_in_transaction, server_max = cursor.fetchone()
    return {
        "total": total,
        "active": active,
        "idle_in_transaction": idle_in_transaction,
        "server_max": server_max,
        "pool": pool_size(),
        "max": max_connections(),
        "pool_share": total / pool_size() if pool_size() else 0.0,
    }


def backup_measured(backup: BackupStatus) -> str:
    """The Backups alert's measure: why backups are stale, or how fresh they are, or off."""
    if not backup.enabled:
        return "off (PITR_ENABLED is false)"
    if backup.problems:
        return "; ".join(backup.problems)
    return (
        f"last base backup {duration_text(backup.base_backup_age_seconds)} ago,"
        f" WAL received up to {duration_text(backup.wal_behind_seconds)} ago"
    )


def alerts(*, quotas, logins, windows, sizes, slow, backup: BackupStatus) -> list[Alert]:
    """The seed's "Alerts to Set Up", and issue 20's backups, as the page shows them
    (deploy/prometheus has the same rules for Prometheus). Backups that are off do not fire."""
    window = windows[ALERT_WINDOW]
    return [
        Alert(
            "Quota exceeded",
            "critical",
            "any user at or over 100 %",
            f"{quotas['exceeded']} users",
            FIRING if quotas["exceeded"] else OK,
        ),
        Alert(
            "Quota warning",
            "warning",
            "any user at or over 80 %",
            f"{quotas['warning']} users",
            FIRING if quotas["warning"] else OK,
        ),
        Alert(
            "Failed login spike",
            "critical",
            f"more than {FAILED_LOGINS_PER_MINUTE} per minute (last 10 minutes)",
            f"{logins['failures']} in the busiest minute",
            _state(logins["failures"], FAILED_LOGINS_PER_MINUTE),
        ),
        Alert(
            "High error rate",
            "warning",
            f"more than 5 % of the last {window.seconds // 60} minutes' requests failed",
            f"{window.error_rate * 100:.1f} % ({window.failed} failed of"
            f" {window.succeeded + window.failed}; {window.cancelled} cancelled and"
            f" {window.rejected} rejected apart)",
            _state(window.error_rate, ERROR_RATE_LIMIT),
        ),
        Alert(
            "Database size",
            "critical",
            "more than 80 % of capacity",
            f"{sizes['share'] * 100:.1f} % of {sizes['capacity'] / GIB:.1f} GiB",
            _state(sizes["share"], DATABASE_SIZE_LIMIT),
        ),
        Alert(
            "Slow queries",
            "warning",
            f"running longer than {SLOW_QUERY_SECONDS} s now, or slower than that on average"
            " (pg_stat_statements)",
            f"{slow['count']} running now, {slow['statements_count']} slow statements",
            FIRING if slow["count"] or slow["statements_count"] else OK,
        ),
        Alert(
            "Backups",
            "critical",
            f"a base backup in the last {settings.BACKUP_STALE_HOURS} h and WAL received up to"
            f" {settings.WAL_STALE_MINUTES} min ago (when PITR_ENABLED)",
            backup_measured(backup),
            FIRING if backup.state == STALE else OK,
        ),
    ]


def clock() -> datetime:
    """The time the page and /metrics measure windows up to (tests pin it)."""
    return datetime.now(UTC)


# --- view -------------------------------------------------------------------------------------


@staff_required
def monitoring(request):
    now = clock()
    quotas = quota_usage()
    logins = failed_login_peak(now=now)
    windows = request_windows(now=now)
    # Size and volume are analytics (the replica may serve them); what alerts on the last
    # minutes, the connections and the slow statements are the primary's.
    volume = replica.read(
        request,
        lambda: {
            "today": usage_today(now=now),
            "monthly_users": active_users_this_month(now=now),
            "sizes": database_sizes(),
        },
    )
    sizes = volume["sizes"]
    slow = slow_queries()
    backup = backup_status()
    return render(
        request,
        "dashboard/monitoring.html",
        {
            "now": now,
            **volume,
            "windows": list(windows.values()),
            "quotas": quotas,
            "logins": logins,
            "replica": replica.replica_status(),
            "replica_max_lag": settings.REPLICA_MAX_LAG_SECONDS,
            "conns": connections(),
            "slow": slow,
            "alerts": alerts(
                quotas=quotas, logins=logins, windows=windows, sizes=sizes, slow=slow, backup=backup
            ),
            "backup": backup,
            "stale_hours": settings.BACKUP_STALE_HOURS,
            "stale_minutes": settings.WAL_STALE_MINUTES,
            "estimate_users": ESTIMATE_USERS,
            "queue": jobs.job_queue(),
            "runs": jobs.recent_runs(),
        },
    )
