"""gunicorn's configuration for ``make serve`` (and a systemd unit or Procfile: README
"Deployment"): ``gunicorn -c witchcraft/gunicorn.conf.py``.

Everything comes from the environment (and ``.env``, which never overrides it):

- ``HOST`` / ``PORT`` (default 127.0.0.1:8000, behind the TLS proxy), or ``BIND`` for anything
  else (``unix:/run/witchcraft.sock``, ``0.0.0.0:8000`` in a container);
- ``WEB_CONCURRENCY`` workers (default 2 x CPUs + 1, at most 8: witchcraft/platform/serving.py);
- ``WEB_THREADS`` threads per worker (default 1; above 1 gunicorn's gthread worker);
- ``WEB_TIMEOUT`` seconds before a silent worker is killed and replaced (default 60);
- ``TRUSTED_PROXIES``: the proxies whose ``X-Forwarded-Proto`` gunicorn believes (the same
  list the site takes the client's address through; default: none);
- ``PROMETHEUS_MULTIPROC_DIR``: set here, to a fresh folder under the data folder, so that
  /metrics adds up every worker's counters.

The access log goes to stdout without query strings, and secret path segments (the password
reset and e-mail verification tokens) are masked, in the request and in the ``Referer``, and in
Django's own request log (``Bad Request: /auth/verify/...``).

This file must not import Django, nor prometheus_client before PROMETHEUS_MULTIPROC_DIR is set
(prometheus_client chooses how to store values when it is imported).
"""

import logging
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import environ
from gunicorn.glogging import Logger

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))  # gunicorn started from elsewhere still finds the project

from witchcraft.platform import (  # noqa: E402
    clients,
    embedded_db,
    serving,
)

environ.Env.read_env(BASE_DIR / ".env")  # the same .env as settings.py; never overrides

wsgi_app = "witchcraft.wsgi:application"
chdir = str(BASE_DIR)
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")
bind = [os.environ.get("BIND") or f"{HOST}:{PORT}"]
workers = serving.workers(os.environ.get("WEB_CONCURRENCY"))
threads = serving.threads(os.environ.get("WEB_THREADS"))
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))  # > DATABASE_POOL_TIMEOUT (30 s)
graceful_timeout = 30
keepalive = 5  # behind a proxy that reuses its connections
# Replace a worker after WEB_MAX_REQUESTS requests (jittered by a tenth, so they do not restart
# together): a slow leak in a dependency never grows without bound. A new worker loads the
# application again (~0.8 s of CPU), so not too often: at 2,000 an API under load replaced a
# worker every ~15 s (bench/README.md).
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - gunicorn's documented choice
if SHARED_MEMORY.is_dir():  # heartbeat files in memory, not on a (possibly slow) disk
    worker_tmp_dir = str(SHARED_MEMORY)
proc_name = "witchcraft"

# --- proxies ---------------------------------------------------------------------------------
# gunicorn believes X-Forwarded-Proto (https) only from TRUSTED_PROXIES, the list Django takes
# the client's address through (witchcraft.platform.clients); empty: from nobody. gunicorn's own
# FORWARDED_ALLOW_IPS is refused rather than silently ignored, so there is one list.
if "FORWARDED_ALLOW_IPS" in os.environ:
    raise RuntimeError(
        "FORWARDED_ALLOW_IPS is not read: name the proxies in TRUSTED_PROXIES instead "
        "(the same list for gunicorn and the site; README, Deployment)"
    )
TRUSTED_PROXIES = clients.trusted_proxies(os.environ.get("TRUSTED_PROXIES", ""))
# gunicorn 23 compares the peer with single addresses (a string list, checked when the config
# loads); each worker is then given the parsed list, which also matches networks (10.0.0.0/8),
# before it serves (post_worker_init below).
forwarded_allow_ips = ",".join(
    str(network.network_address)
    for network in TRUSTED_PROXIES.networks
    if network.num_addresses == 1
)

# --- logs -----------------------------------------------------------------------------------
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Client, method, path (no query string), protocol, status, bytes, milliseconds, referrer,
# user agent, and the request id that audit_logs rows carry.
access_log_format = (
    '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s" %({x-request-id}o)s'
)
# URL patterns whose arguments are secrets (the mailed one-time links).
SECRET_URL_ARGUMENTS = frozenset({"token"})
REDACTED = "[redacted]"


def redact_path(path: str) -> str:
    """``path`` with every URL argument named in SECRET_URL_ARGUMENTS masked."""
    from django.urls import Resolver404, resolve

    try:
        match = resolve(path)
    except (Resolver404, ValueError):
        return path
    for name, value in match.kwargs.items():
        if name in SECRET_URL_ARGUMENTS and value:
            path = path.replace(str(value), REDACTED)
    return path


class AccessLogger(Logger):
    """gunicorn's logger, minus query strings and secret path segments."""

    def atoms(self, resp, req, wsgi_env, request_time):
        atoms = super().atoms(resp, req, wsgi_env, request_time)
        path = redact_path(wsgi_env.get("PATH_INFO", ""))
        atoms["U"] = path
        atoms["q"] = ""
        atoms["r"] = f"{atoms['m']} {path} {atoms['H']}"
        referrer = atoms.get("f", "-")
        if referrer and referrer != "-":
            parts = urlsplit(referrer)
            atoms["f"] = f"{parts.scheme}://{parts.netloc}{redact_path(parts.path)}"
        return atoms


logger_class = AccessLogger


class SecretPathFilter(logging.Filter):
    """Masks secret path segments in Django's request log ("Bad Request: /auth/verify/...")."""

    def filter(self, record):
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(
                redact_path(arg) if isinstance(arg, str) and arg.startswith("/") else arg
                for arg in record.args
            )
        return True


def post_worker_init(worker):
    """In each worker, once Django is loaded and before it serves: its 4xx/5xx request log
    masks tokens too, and gunicorn trusts X-Forwarded-Proto from every trusted network."""
    logging.getLogger("django.request").addFilter(SecretPathFilter())
    worker.cfg.settings["forwarded_allow_ips"].value = TRUSTED_PROXIES


def worker_exit(server, worker):
    """A worker leaving (restart, shutdown) says goodbye to the database: its persistent
    connection, or its pool, is closed rather than dropped."""
    if "django.db" not in sys.modules:
        return  # the worker never loaded the application
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()
        if getattr(conn, "pool", None) is not None:
            conn.close_pool()


# --- metrics across workers ------------------------------------------------------------------
_multiprocess = None  # prometheus_client.multiprocess, once on_starting has set the folder


def on_starting(server):
    """Before any worker: an empty folder for this master's metric files."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        parent = embedded_db.data_dir() / "metrics"
        for stale in parent.glob("*") if parent.is_dir() else []:
            if stale.name.isdigit() and not _alive(int(stale.name)):
                shutil.rmtree(stale, ignore_errors=True)  # a master that died with its files
        folder = str(parent / str(os.getpid()))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    shutil.rmtree(folder, ignore_errors=True)
    Path(folder).mkdir(parents=True, exist_ok=True)
    # Imported here, once the folder is set (prometheus_client picks its mode at import), and
    # not in child_exit: that runs in a signal handler, which may interrupt its own import.
    global _multiprocess
    from prometheus_client import multiprocess as _multiprocess

    server.log.info("metrics of every worker in %s", folder)


def child_exit(server, worker):
    """A worker is gone: its live gauges go with it (its counters still count)."""
    _multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if folder and Path(folder).name == str(os.getpid()):
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
