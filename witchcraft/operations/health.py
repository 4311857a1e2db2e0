"""``GET /healthz``: is this process able to serve, is its database answering, and is the
background work alive (the worker's heartbeat, the last maintenance runs).

Each part says ``ok`` or how it fails, and ``failing`` lists the parts that fail. Only a
database that does not answer makes ``/healthz`` itself fail (503): a worker without a recent
heartbeat or a failed maintenance run say so in their own part and in ``failing`` with a 200
("degraded"), so a load balancer never takes the web server out for what it cannot fix.
``/healthz?part=worker`` (or ``database``, ``maintenance``, ``backup``) answers 503 when that
one part fails: what a monitor alerting on the worker asks.

The ``backup`` part is point-in-time recovery's state (witchcraft.operations.pitr.status): ``ok``,
``stale`` (a base backup older than BACKUP_STALE_HOURS, or WAL archiving further behind than
WAL_STALE_MINUTES; failing, with the problems in words) or ``off`` (PITR_ENABLED false; not
failing).

The ``replica`` part (witchcraft/platform/replica) is ``absent`` (no DATABASE_REPLICA_URL), ``ok``,
``lagging`` or ``down``, with the replay lag: never failing, since analytics pages read the
primary meanwhile.

The answer names no host, socket path or driver text (it is unauthenticated): the reason of a
failure is added (``detail``) only for a caller that may read ``/metrics`` (the metrics token or
an allowed address). It is exempt from row-level security (witchcraft/platform/rls.py) and reads as
the owner: four small indexed queries.
"""

from __future__ import annotations

from datetime import datetime

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from witchcraft.operations import jobs
from witchcraft.operations.metrics.access import may_scrape
from witchcraft.operations.pitr import status as backups
from witchcraft.platform import outage, replica
from witchcraft.platform.embedded_db import EmbeddedServerError
from witchcraft.platform.replica import state as replica_state

OK, DEGRADED, ERROR = "ok", "degraded", "error"
UNKNOWN, UNAVAILABLE = "unknown", "unavailable"
PARTS = ("database", "worker", "maintenance", "backup")
UNREAD_BACKUP = {
    "status": UNKNOWN,
    "problems": [],
    "last_base_backup": None,
    "wal_behind_seconds": None,
}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def database_check(request=None) -> tuple[str, str | None]:
    """``("ok", None)`` when a round trip to the database succeeds, else
    ``("unavailable", the reason)``; the reason is for authorised callers only. An outage is
    noted on ``request`` (witchcraft.platform.outage logs it once, not each probe)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except (DatabaseError, EmbeddedServerError) as exc:
        if request is not None and outage.is_database_unavailable(exc):
            outage.mark_unavailable(request, exc)
        return UNAVAILABLE, _one_line(exc)
    return OK, None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def worker_report() -> tuple[dict, str | None]:
    """``{"last_heartbeat": iso or None, "status": "ok" | "stale" | "none" | "unknown"}`` and
    the reason it could not be read, if so."""
    try:
        beat = jobs.worker_heartbeat()
    except DatabaseError as exc:
        return {"last_heartbeat": None, "status": UNKNOWN}, _one_line(exc)
    return {"last_heartbeat": _iso(beat["last_heartbeat"]), "status": beat["status"]}, None


def maintenance_report() -> tuple[dict, str | None]:
    """The last run of each scheduled job: when (started, finished, its slot), how it ended and
    what started it; None for a job that never ran. Also the reason it could not be read."""
    try:
        runs = jobs.last_runs()
    except DatabaseError as exc:
        return {}, _one_line(exc)
    return {
        job: None
        if run is None
        else {
            "started_at": _iso(run["started_at"]),
            "finished_at": _iso(run["finished_at"]),
            "scheduled_for": _iso(run["scheduled_for"]),
            "status": run["status"],
            "source": run["source"],
        }
        for job, run in runs.items()
    }, None


def backup_report() -> tuple[dict, str | None]:
    """``{"status": "ok" | "stale" | "off", "problems": [sentences], "last_base_backup": iso or
    None, "wal_behind_seconds": number or None}`` and the reason it could not be read, if so."""
    try:
        state = backups.backup_status()
    except DatabaseError as exc:
        return dict(UNREAD_BACKUP), _one_line(exc)
    behind = state.wal_behind_seconds
    return {
        "status": state.state,
        "problems": state.problems,
        "last_base_backup": _iso(state.last_base_backup_end),
        "wal_behind_seconds": None if behind is None else round(behind, 1),
    }, None


def replica_report(*, detail: bool = False) -> dict:
    """``{"status": "absent" | "ok" | "lagging" | "down", "lag_seconds", "lag_bytes"}``, and
    with ``detail`` (a caller that may read /metrics) the ``problem`` when it is not ok (it may
    name the replica's host)."""
    state = replica.replica_status()
    report = {"status": state.state}
    if state.state in (replica_state.OK, replica_state.LAGGING):
        seconds = state.lag_seconds
        report |= {
            "lag_seconds": None if seconds is None else round(seconds, 1),
            "lag_bytes": state.lag_bytes,
        }
    if state.problem and detail:
        report["problem"] = state.problem
    return report


def failing_parts(
    *, database: str, worker: dict, maintenance: dict, unread: set[str], backup: dict | None = None
) -> list:
    """The parts that fail, in PARTS order: a database that does not answer, a worker whose
    heartbeat is missing or late, a job whose last run failed, backups gone stale (or parts that
    could not be read). Backups that are off do not fail.
    """
    if database != OK:
        return ["database"]  # the other parts are read from it: unknown, not failing
    failing = []
    if worker["status"] != jobs.WORKER_OK or "worker" in unread:
        failing.append("worker")
    if "maintenance" in unread or any(
        run and run["status"] == "failed" for run in maintenance.values()
    ):
        failing.append("maintenance")
    if "backup" in unread or (backup or {}).get("status") == backups.STALE:
        failing.append("backup")
    return failing


def overall_status(failing: list) -> str:
    if "database" in failing:
        return ERROR
    return DEGRADED if failing else OK


@never_cache
@require_GET
def healthz(request):
    part = request.GET.get("part", "")
    if part and part not in PARTS:
        message = f"part must be one of {', '.join(PARTS)}."
        return JsonResponse({"error": {"code": "bad_request", "message": message}}, status=400)
    database, database_reason = database_check(request)
    reasons = {"database": database_reason}
    if database == OK:
        worker, reasons["worker"] = worker_report()
        maintenance, reasons["maintenance"] = maintenance_report()
        backup, reasons["backup"] = backup_report()
    else:
        worker, maintenance = {"last_heartbeat": None, "status": UNKNOWN}, {}
        backup = dict(UNREAD_BACKUP)
    unread = {name for name in ("worker", "maintenance", "backup") if reasons.get(name)}
    failing = failing_parts(
        database=database, worker=worker, maintenance=maintenance, unread=unread, backup=backup
    )
    body = {
        "status": overall_status(failing),
        "failing": failing,
        "database": database,
        "worker": worker,
        "maintenance": maintenance,
        "backup": backup,
        # Reported, never failing: analytics pages read the primary while it is not ok.
        "replica": (
            replica_report(detail=may_scrape(request)) if database == OK else {"status": UNKNOWN}
        ),
    }
    detail = {name: reason for name, reason in reasons.items() if reason}
    if detail and may_scrape(request):
        body["detail"] = detail
    watched = part or "database"  # /healthz fails for the database alone
    return JsonResponse(body, status=503 if watched in failing else 200)
