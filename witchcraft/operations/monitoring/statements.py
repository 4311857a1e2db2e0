"""Slow queries: those running longer than a second now, and the statements slower than a second
on average since ``pg_stat_statements`` was last reset, where the server has it.

Both are read through staff-only SECURITY DEFINER functions: the runtime role sees no other
connection in ``pg_stat_activity`` and cannot enter the schema that holds
``pg_stat_statements`` (witchcraft/sql/0003_monitoring_windows.sql).
"""

from __future__ import annotations

from django.db import connection

SLOW_QUERY_SECONDS = 1
SLOW_QUERY_LIMIT = 20

# monitoring_statements_state()
STATEMENTS_OK = "ok"
STATEMENTS_NOT_LOADED = "not_loaded"  # installed, not in shared_preload_libraries
STATEMENTS_ABSENT = "absent"  # not installed in this database (or not built for this server)


def running_queries(*, seconds: float = SLOW_QUERY_SECONDS, limit: int = SLOW_QUERY_LIMIT):
    """``(count, [{"pid", "user", "seconds", "query"}, ...])``: this database's statements
    running longer than ``seconds`` now, the longest first, at most ``limit`` listed."""
    with connection.cursor() as cursor:
        cursor.execute(  # SECURITY DEFINER: every connection's activity, for staff only
            "SELECT out_pid, out_user, out_seconds, out_query, out_total"
            " FROM monitoring_slow_queries(%s, %s)",
            [seconds, limit],
        )
        rows = cursor.fetchall()
    return (
        rows[0][4] if rows else 0,
        [
            {"pid": pid, "user": user, "seconds": elapsed, "query": query}
            for pid, user, elapsed, query, _ in rows
        ],
    )


def slow_statements(*, seconds: float = SLOW_QUERY_SECONDS, limit: int = SLOW_QUERY_LIMIT):
    """``(state, count, [{"query", "calls", "mean_ms", "max_ms", "total_ms"}, ...])``: whether
    pg_stat_statements answers here (STATEMENTS_OK, _NOT_LOADED, _ABSENT), how many of this
    database's statements take longer than ``seconds`` on average, the slowest ``limit``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT monitoring_statements_state()")
        (state,) = cursor.fetchone()
        if state != STATEMENTS_OK:
            return state, 0, []
        cursor.execute(
            "SELECT out_query, out_calls, out_mean_ms, out_max_ms, out_total_ms, out_total"
            " FROM monitoring_slow_statements(%s, %s)",
            [seconds * 1000, limit],
        )
        rows = cursor.fetchall()
    return (
        state,
        rows[0][5] if rows else 0,
        [
            {"query": query, "calls": calls, "mean_ms": mean, "max_ms": most, "total_ms": total}
            for query, calls, mean, most, total, _ in rows
        ],
    )


def slow_queries() -> dict:
    """Both kinds for the monitoring page and /metrics: ``count`` and ``running`` (now);
    ``statements_state``, ``statements_count`` and ``statements`` (pg_stat_statements)."""
    count, running = running_queries()
    state, statements_count, statements = slow_statements()
    return {
        "count": count,
        "running": running,
        "statements_state": state,
        "statements_count": statements_count,
        "statements": statements,
    }
