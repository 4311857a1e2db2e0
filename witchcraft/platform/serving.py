"""How ``make serve`` runs: gunicorn's workers and threads, and the database connections they cost.

Shared by ``witchcraft/gunicorn.conf.py`` (which must not import Django) and the database
backend's system check (``witchcraft.W001``), so both count workers the same way.

``python -m witchcraft.platform.serving preflight`` is what ``make serve`` runs first: it refuses,
in one line, to start production serving without a real ``SECRET_KEY``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# 2 x cores + 1 (gunicorn's rule of thumb for sync workers), but no more than this by default:
# each worker holds its own database connections (and ~70 MB), and past a handful of workers on
# one machine the database, not Python, is the bottleneck. WEB_CONCURRENCY overrides it.
MAX_DEFAULT_WORKERS = 8

BASE_DIR = Path(__file__).resolve().parents[2]


def cpu_count() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(cpus: int | None = None) -> int:
    return min(2 * (cpus or cpu_count()) + 1, MAX_DEFAULT_WORKERS)


def workers(configured: int | str | None) -> int:
    """WEB_CONCURRENCY when set to a positive number, else :func:`default_workers`."""
    value = int(configured or 0)
    return value if value > 0 else default_workers()


def threads(configured: int | str | None) -> int:
    """WEB_THREADS (threads per worker; gunicorn uses its gthread worker above 1)."""
    return max(int(configured or 1), 1)


def connections_per_worker(*, pool: bool, pool_size: int, worker_threads: int) -> int:
    """The most connections one worker may hold: its pool's ``max_size`` when pooling, else one
    persistent connection per thread (Django keeps a connection per thread)."""
    return pool_size if pool else worker_threads


def connection_demand(*, web_workers: int, per_worker: int) -> int:
    return web_workers * per_worker


# --- preflight ------------------------------------------------------------------------------

MISSING_KEY = (
    "make serve runs with DEBUG=false and needs a SECRET_KEY: add SECRET_KEY=<50+ random "
    'characters> to .env (python -c "import secrets; print(secrets.token_urlsafe(50))")'
)


def preflight() -> str | None:
    """Return why production serving cannot start (one line), or None when it can.

    Reads ``.env`` the way settings.py does (the environment wins), then loads the settings
    (``make serve`` sets ``DEBUG=false``) and refuses the generated development key
    (``witchcraft.E001``). It needs no database: ``migrate`` comes next and runs every check.
    """
    import environ

    environ.Env.read_env(BASE_DIR / ".env")  # never overrides a variable already set
    if not os.environ.get("SECRET_KEY", "").strip():
        return MISSING_KEY
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "witchcraft.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        return f"make serve: {exc}"
    from witchcraft.platform.checks import check_secret_key

    errors = check_secret_key(None)
    if errors:
        return f"make serve: {errors[0].id}: {errors[0].msg}"
    return None


def main(argv: list[str]) -> int:
    if argv[1:] != ["preflight"]:
        print("usage: python -m witchcraft.platform.serving preflight", file=sys.stderr)
        return 2
    os.environ["DEBUG"] = "false"
    problem = preflight()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
