"""``GET /healthz``: is this process able to serve, is its database answering, and is the
background work alive (the worker's heartbeat, the last maintenance runs).

Only a database that does not answer makes it fail (503): a stale worker or a failed
maintenance run says ``"status": "degraded"`` with 200, so a load balancer never takes the web
server out for what the web server cannot fix. It is exempt from row-level security
(witchcraft.rls) and reads as the owner: three small indexed queries.
"""

from __future__ import annotations

from datetime import datetime

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from witchcraft import jobs
from witchcraft.embedded_db import EmbeddedServerError

OK, DEGRADED, ERROR = "ok", "degraded", "error"
UNKNOWN = "unknown"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"error: {text.splitlines()[0] if text else type(exc).__name__}"


def database_status() -> str:
    """Return ``"ok"`` when a round trip to the database succeeds, else the reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except (DatabaseError, EmbeddedServerError) as exc:
        return _one_line(exc)
    return "ok"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def worker_report() -> dict:
    """``{"last_heartbeat": iso or None, "status": "ok" | "stale" | "none"}`` ("unknown" when
    the queue's table cannot be read)."""
    try:
        beat = jobs.worker_heartbeat()
    except DatabaseError as exc:
        return {"last_heartbeat": None, "status": UNKNOWN, "error": _one_line(exc)}
    return {"last_heartbeat": _iso(beat["last_heartbeat"]), "status": beat["status"]}


def maintenance_report() -> dict:
    """The last run of each scheduled job: when (started, finished, its slot), how it ended and
    what started it; None for a job that never ran."""
    try:
        runs = jobs.last_runs()
    except DatabaseError as exc:
        return {"error": _one_line(exc)}
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
    }


def overall_status(*, worker: dict, maintenance: dict) -> str:
    """``ok``, or ``degraded`` when the worker is not ok or a job's last run failed."""
    if worker["status"] != jobs.WORKER_OK or "error" in maintenance:
        return DEGRADED
    if any(run and run["status"] == "failed" for run in maintenance.values()):
        return DEGRADED
    return OK


@never_cache
@require_GET
def healthz(request):
    database = database_status()
    if database != "ok":
        return JsonResponse(
            {
                "status": ERROR,
                "database": database,
                "worker": {"last_heartbeat": None, "status": UNKNOWN},
                "maintenance": {},
            },
            status=503,
        )
    worker = worker_report()
    maintenance = maintenance_report()
    return JsonResponse(
        {
            "status": overall_status(worker=worker, maintenance=maintenance),
            "database": database,
            "worker": worker,
            "maintenance": maintenance,
        }
    )
