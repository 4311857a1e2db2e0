"""``GET /healthz``: is this process able to serve, and is its database answering."""

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from witchcraft.embedded_db import EmbeddedServerError


def database_status() -> str:
    """Return ``"ok"`` when a round trip to the database succeeds, else the reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except (DatabaseError, EmbeddedServerError) as exc:
        text = str(exc).strip()
        return f"error: {text.splitlines()[0] if text else type(exc).__name__}"
    return "ok"


@never_cache
@require_GET
def healthz(request):
    database = database_status()
    healthy = database == "ok"
    return JsonResponse(
        {"status": "ok" if healthy else "error", "database": database},
        status=200 if healthy else 503,
    )
