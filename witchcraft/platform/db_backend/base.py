"""Django's PostgreSQL backend, pointed at the embedded server when ``EMBEDDED`` is set.

The socket directory is only known once the server runs (it is read from ``postmaster.pid``),
so it is resolved at connection time rather than in settings. A process that lost its server
(stopped, or killed with -9) gets it back on its next connection.

With ``OPTIONS["pool"]`` (``DATABASE_POOL=true``) connections come from psycopg's pool; a
connection handed back is reset to the login role (see :func:`reset_pooled_connection`), one
lent is checked first (a database restart leaves dead connections in the pool), and a pool
built for an embedded server that has since moved is rebuilt.
"""

from django.conf import settings
from django.core import checks
from django.db.backends.base.validation import BaseDatabaseValidation
from django.db.backends.postgresql import base, client
from django.db.utils import OperationalError
from psycopg_pool import ConnectionPool

from witchcraft.platform import embedded_db, embedded_replica, serving

_attached: embedded_db.ServerInfo | None = None


def _server(*, recheck: bool = False) -> embedded_db.ServerInfo:
    global _attached
    if _attached is None or recheck:
        _attached = embedded_db.ensure_running()
    return _attached


class DatabaseClient(client.DatabaseClient):
    """``manage.py dbshell``: the bundled psql, on the embedded server's socket."""

    executable_name = "psql"

    def runshell(self, parameters):
        if self.connection.settings_dict.get("EMBEDDED"):
            server = _server()
            self.connection.settings_dict.update(HOST=str(server.socket_dir), PORT=server.port)
            self.executable_name = str(embedded_db.bin_dir() / "psql")
        return super().runshell(parameters)


CONNECTION_BUDGET = (
    "{workers} web workers x {per_worker} connections each ({how}) = {demand} connections, "
    "more than DATABASE_MAX_CONNECTIONS ({limit})."
)


class DatabaseValidation(BaseDatabaseValidation):
    def check(self, **kwargs):
        """``witchcraft.W001``: the web workers could open more connections than the budget.

        Run by ``manage.py migrate`` (so by ``make serve``) and ``check --database default``.
        """
        issues = super().check(**kwargs)
        pool_options = self.connection.settings_dict["OPTIONS"].get("pool")
        pool = bool(pool_options)
        worker_threads = serving.threads(getattr(settings, "WEB_THREADS", 1))
        pool_size = getattr(settings, "DATABASE_POOL_SIZE", 20)
        if isinstance(pool_options, dict):
            pool_size = pool_options.get("max_size", pool_size)
        per_worker = serving.connections_per_worker(
            pool=pool, pool_size=pool_size, worker_threads=worker_threads
        )
        web_workers = serving.workers(getattr(settings, "WEB_CONCURRENCY", 0))
        demand = serving.connection_demand(web_workers=web_workers, per_worker=per_worker)
        limit = getattr(settings, "DATABASE_MAX_CONNECTIONS", 100)
        if demand > limit:
            how = (
                f"a pool of DATABASE_POOL_SIZE={pool_size}"
                if pool
                else f"one per thread, WEB_THREADS={worker_threads}"
            )
            issues.append(
                checks.Warning(
                    CONNECTION_BUDGET.format(
                        workers=web_workers,
                        per_worker=per_worker,
                        how=how,
                        demand=demand,
                        limit=limit,
                    ),
                    hint=(
                        "Lower WEB_CONCURRENCY, "
                        + ("DATABASE_POOL_SIZE" if pool else "WEB_THREADS")
                        + ", or raise DATABASE_MAX_CONNECTIONS if the server allows more."
                    ),
                    id="witchcraft.W001",
                )
            )
        return issues


def reset_pooled_connection(conn) -> None:
    """Run when psycopg's pool takes a connection back: back to the login role.

    Requests set their role and ``app.*`` settings with ``SET LOCAL`` (witchcraft/platform/rls.py),
    which end with the transaction; this is the second lock on that door, so a session-level
    ``SET ROLE`` left by mistake can never reach the next request. (``RESET ALL`` would also
    undo the time zone Django set when the connection was opened.)
    """
    conn.execute("RESET ROLE")
    if not conn.autocommit:
        conn.commit()


class DatabaseWrapper(base.DatabaseWrapper):
    client_class = DatabaseClient
    validation_class = DatabaseValidation

    @property
    def pool(self):
        options = self.settings_dict["OPTIONS"].get("pool")
        if options and self.alias not in self._connection_pools:
            options = {} if options is True else options
            extra = {}
            if "reset" not in options and not self.settings_dict["OPTIONS"].get("assume_role"):
                extra["reset"] = reset_pooled_connection
            if "check" not in options:
                # A connection is checked before it is lent: one that a database restart
                # killed while it sat in the pool is replaced, not handed to a request.
                extra["check"] = ConnectionPool.check_connection
            if extra:
                self.settings_dict["OPTIONS"]["pool"] = {**options, **extra}
        return super().pool

    def get_connection_params(self):
        params = super().get_connection_params()
        if self.settings_dict.get("EMBEDDED"):
            server = _server()
            params["host"] = str(server.socket_dir)
            params["port"] = server.port
        elif self.settings_dict.get("EMBEDDED_REPLICA"):
            # DATABASE_REPLICA_URL=embedded: the standby `make replica` started, never started
            # here (a page falls back to the primary while it is not running).
            standby = embedded_db.read_pidfile(embedded_replica.pgdata_dir())
            if standby is None:
                raise OperationalError("the embedded standby is not running (make replica)")
            params["host"] = str(standby.socket_dir)
            params["port"] = standby.port
        return params

    def get_new_connection(self, conn_params):
        try:
            return super().get_new_connection(conn_params)
        except self.Database.OperationalError:
            if not self.settings_dict.get("EMBEDDED"):
                raise
        try:
            server = _server(recheck=True)
        except embedded_db.EmbeddedServerError as exc:
            raise OperationalError(f"embedded PostgreSQL: {exc}") from exc
        if self.pool:
            # The pool was built with the old socket: build a new one (get_connection_params
            # reads the running server again).
            self.close_pool()
        conn_params = {**conn_params, "host": str(server.socket_dir), "port": server.port}
        return super().get_new_connection(conn_params)
