"""``manage.py db status|start|stop|url|psql``: the development database server.

``manage.py db replica start|stop|status|reset|url``: its development streaming standby
(witchcraft/platform/embedded_replica.py), for the embedded server only."""

import os
import shutil

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from witchcraft.platform import embedded_db, embedded_replica
from witchcraft.platform.dbcheck import describe_failure

REPLICA_ACTIONS = ["start", "stop", "status", "reset", "url"]


class Command(BaseCommand):
    help = (
        "Manage the database server: status, start, stop, url, psql; "
        "`replica start|stop|status|reset|url` for the embedded server's standby."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "start", "stop", "url", "psql", "replica"])
        parser.add_argument(
            "replica_action",
            nargs="?",
            choices=REPLICA_ACTIONS,
            help="with `replica`: what to do with the embedded standby",
        )

    def handle(self, *args, action: str, replica_action: str | None = None, **options):
        settings_dict = connections["default"].settings_dict
        embedded = bool(settings_dict.get("EMBEDDED"))
        if action == "replica":
            if replica_action is None:
                raise CommandError(f"db replica needs one of: {', '.join(REPLICA_ACTIONS)}")
            if not embedded:
                raise CommandError(
                    "DATABASE_URL is set: the development standby follows the embedded "
                    "PostgreSQL only; point DATABASE_REPLICA_URL at your own standby."
                )
            try:
                return getattr(self, f"replica_{replica_action}")()
            except embedded_db.EmbeddedServerError as exc:
                raise CommandError(str(exc)) from None
        if replica_action is not None:
            raise CommandError(f"db {action} takes no second argument")
        return getattr(self, f"do_{action}")(embedded=embedded)

    # --- actions -----------------------------------------------------------------------------
    def do_status(self, *, embedded: bool) -> None:
        if not embedded:
            self._external_status()
            return
        info = embedded_db.running()
        self.stdout.write(f"data directory: {embedded_db.pgdata_dir()}")
        if info is None:
            self.stdout.write("embedded PostgreSQL: stopped")
            return
        self.stdout.write(
            f"embedded PostgreSQL {embedded_db.server_version(info)}: running "
            f"(pid {info.pid}, socket {info.socket_dir})"
        )

    def do_start(self, *, embedded: bool) -> None:
        if not embedded:
            self._create_external_database()
            self._external_status()
            return
        try:
            info = embedded_db.ensure_running()
        except embedded_db.EmbeddedServerError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"embedded PostgreSQL running (pid {info.pid}, socket {info.socket_dir})")

    def do_stop(self, *, embedded: bool) -> None:
        if not embedded:
            raise CommandError("DATABASE_URL is set: that server is not ours to stop.")
        try:
            stopped = embedded_db.stop()
        except embedded_db.EmbeddedServerError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            "embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running"
        )

    def do_url(self, *, embedded: bool) -> None:
        self.stdout.write(self._url(embedded=embedded))

    def do_psql(self, *, embedded: bool) -> None:
        url = self._url(embedded=embedded)
        psql = embedded_db.bin_dir() / "psql"
        if not psql.exists():
            found = shutil.which("psql")
            if found is None:
                raise CommandError("no psql client found")
            psql = found
        os.execv(str(psql), [str(psql), url])  # noqa: S606 - replaces this process with psql

    # --- replica actions (the embedded standby) ---------------------------------------------
    def replica_start(self) -> None:
        info = embedded_replica.start()
        self.stdout.write(
            f"embedded standby running (pid {info.pid}, socket {info.socket_dir}, port "
            f"{info.port}), following the embedded PostgreSQL"
        )
        self.stdout.write(f"standby URL: {info.url()}")
        self.stdout.write("to send the reads meant for a replica to it, put this line in .env:")
        self.stdout.write("DATABASE_REPLICA_URL=embedded")

    def replica_stop(self) -> None:
        stopped = embedded_replica.stop()
        self.stdout.write(
            "embedded standby stopped" if stopped else "embedded standby was not running"
        )

    def replica_status(self) -> None:
        state = embedded_replica.status()
        self.stdout.write(f"standby data directory: {embedded_replica.pgdata_dir()}")
        if not state.running:
            self.stdout.write("embedded standby: stopped")
            return
        recovery = "in recovery" if state.in_recovery else "NOT in recovery (promoted?)"
        self.stdout.write(
            f"embedded standby: running (pid {state.pid}, socket {state.socket_dir}, port "
            f"{state.port}), {recovery}"
        )
        self.stdout.write(
            f"WAL receiver: {state.wal_receiver_status or 'not running'}; received "
            f"{state.receive_lsn or '-'}, replayed {state.replay_lsn or '-'}"
        )
        lag_bytes = "unknown" if state.lag_bytes is None else f"{state.lag_bytes} bytes"
        lag_seconds = "unknown" if state.lag_seconds is None else f"{state.lag_seconds:.1f} s"
        self.stdout.write(f"replay lag: {lag_bytes}, {lag_seconds}")

    def replica_reset(self) -> None:
        existed = embedded_replica.reset()
        self.stdout.write(
            ("embedded standby deleted" if existed else "there was no embedded standby")
            + f"; slot {embedded_replica.SLOT_NAME} dropped from the primary if it was there. "
            "`manage.py db replica start` takes a fresh copy."
        )

    def replica_url(self) -> None:
        self.stdout.write(embedded_replica.url())

    # --- helpers -----------------------------------------------------------------------------
    def _url(self, *, embedded: bool) -> str:
        if embedded:
            try:
                return embedded_db.ensure_running().url()
            except embedded_db.EmbeddedServerError as exc:
                raise CommandError(str(exc)) from None
        return os.environ["DATABASE_URL"]

    def _create_external_database(self) -> None:
        """Create the configured database on an external server when it is missing."""
        connection = connections["default"]
        name = connection.settings_dict["NAME"]
        try:
            with connection._nodb_cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
                    self.stdout.write(f"created database {name}")
        except Exception as exc:
            raise CommandError(describe_failure("default", exc)) from None

    def _external_status(self) -> None:
        connection = connections["default"]
        try:
            connection.ensure_connection()
            version = connection.cursor().connection.info.server_version
        except Exception as exc:
            raise CommandError(describe_failure("default", exc)) from None
        finally:
            connection.close()
        host = connection.settings_dict.get("HOST") or "localhost"
        self.stdout.write(
            f"PostgreSQL at {host}:{connection.settings_dict.get('PORT') or 5432}: reachable "
            f"(server version {version // 10000}.{version % 10000})"
        )
