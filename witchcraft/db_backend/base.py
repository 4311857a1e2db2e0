"""Django's PostgreSQL backend, pointed at the embedded server when ``EMBEDDED`` is set.

The socket directory is only known once the server runs (it is read from ``postmaster.pid``),
so it is resolved at connection time rather than in settings. A process that lost its server
(stopped, or killed with -9) gets it back on its next connection.
"""

from django.db.backends.postgresql import base, client
from django.db.utils import OperationalError

from witchcraft import embedded_db

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


class DatabaseWrapper(base.DatabaseWrapper):
    client_class = DatabaseClient

    def get_connection_params(self):
        params = super().get_connection_params()
        if self.settings_dict.get("EMBEDDED"):
            server = _server()
            params["host"] = str(server.socket_dir)
            params["port"] = server.port
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
        conn_params = {**conn_params, "host": str(server.socket_dir), "port": server.port}
        return super().get_new_connection(conn_params)
