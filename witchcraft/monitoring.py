"""``/dashboard/monitoring/``: the seed's "Key Metrics" and "Alerts to Set Up" for staff.

Every number comes from a roll-up (``ai_usage_daily``, ``ai_usage_monthly``), an indexed
range (``audit_logs`` by ``created_at``, ``user_quotas`` by ``usage_ratio``) or the server's
own statistics views (``pg_stat_activity``, sizes); never a scan of ``ai_usage_requests``.
The background work (the worker's heartbeat, the queue, the last maintenance runs) comes from
witchcraft.jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncMinute
from django.shortcuts import render

from accounts.models import AuditLog
from billing.models import UserQuota
from usage.models import AIUsageDaily, AIUsageMonthly
from witchcraft import jobs
from witchcraft.staff import dashboard_page, staff_required

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
SLOW_QUERY_SECONDS = 1
SLOW_QUERY_LIMIT = 20

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
    """Today's (UTC) totals from ai_usage_daily: users, requests, errors, latency."""
    totals = AIUsageDaily.objects.filter(usage_date=now.date()).aggregate(
        users=Count("user", distinct=True),
        requests=Sum("request_count"),
        errors=Sum("error_count"),
        latency_sum=Sum("latency_ms_sum"),
        latency_count=Sum("latency_count"),
    )
    requests = totals["requests"] or 0
    elapsed = (now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
    return {
        "users": totals["users"],
        "requests": requests,
        "errors": totals["errors"] or 0,
        "error_rate": (totals["errors"] or 0) / requests if requests else 0.0,
        "error_percent": 100 * (totals["errors"] or 0) / requests if requests else 0.0,
        "requests_per_second": requests / max(elapsed, 1),
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
    with connection.cursor() as cursor:
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


def slow_queries() -> dict:
    """Statements of this database running longer than SLOW_QUERY_SECONDS now (the text of
    every connection, through monitoring_slow_queries()), and pg_stat_statements' slowest when
    that extension is installed."""
    with connection.cursor() as cursor:
        cursor.execute(  # SECURITY DEFINER: every connection's activity, for staff only
            "SELECT out_pid, out_user, out_seconds, out_query, out_total"
            " FROM monitoring_slow_queries(%s, %s)",
            [SLOW_QUERY_SECONDS, SLOW_QUERY_LIMIT],
        )
        running = cursor.fetchall()
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = %s)", ["pg_stat_statements"]
        )
        (installed,) = cursor.fetchone()
    statements = None
    if installed:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT left(query, 500), calls, mean_exec_time FROM pg_stat_statements"
                    " WHERE mean_exec_time > %s ORDER BY mean_exec_time DESC LIMIT %s",
                    [SLOW_QUERY_SECONDS * 1000, SLOW_QUERY_LIMIT],
                )
                statements = [
                    {"query": q, "calls": calls, "mean_ms": mean}
                    for q, calls, mean in cursor.fetchall()
                ]
        except DatabaseError:
            statements = None  # installed but not loaded (shared_preload_libraries)
    return {
        "count": running[0][4] if running else 0,
        "running": [
            {"pid": pid, "user": user, "seconds": seconds, "query": query}
            for pid, user, seconds, query, _ in running
        ],
        "statements": statements,
    }


def alerts(*, quotas, logins, today, sizes, slow) -> list[Alert]:
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
            "more than 5 % of today's requests",
            f"{today['error_rate'] * 100:.1f} % ({today['errors']} of {today['requests']})",
            _state(today["error_rate"], ERROR_RATE_LIMIT),
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
            f"running longer than {SLOW_QUERY_SECONDS} s",
            f"{slow['count']} running now",
            FIRING if slow["count"] else OK,
        ),
    ]


# --- view -------------------------------------------------------------------------------------


@staff_required
def monitoring(request):
    now = datetime.now(UTC)
    today = usage_today(now=now)
    quotas = quota_usage()
    logins = failed_login_peak(now=now)
    sizes = database_sizes()
    conns = connections()
    slow = slow_queries()
    return render(
        request,
        "dashboard/monitoring.html",
        {
            "now": now,
            "today": today,
            "monthly_users": active_users_this_month(now=now),
            "quotas": quotas,
            "logins": logins,
            "sizes": sizes,
            "conns": conns,
            "slow": slow,
            "alerts": alerts(quotas=quotas, logins=logins, today=today, sizes=sizes, slow=slow),
            "estimate_users": ESTIMATE_USERS,
            "queue": jobs.job_queue(),
            "runs": jobs.recent_runs(),
        },
    )
