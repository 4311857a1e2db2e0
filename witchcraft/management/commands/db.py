"""``manage.py db status|start|stop|url|psql``: the development database server."""

import os
import shutil

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from witchcraft.platform import embedded_db
from witchcraft.platform.dbcheck import describe_failure


class Command(BaseCommand):
    help = "Manage the database server: status, start, stop, url, psql."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "start", "stop", "url", "psql"])

    def handle(self, *args, action: str, **options):
        settings_dict = connections["default"].settings_dict
        embedded = bool(settings_dict.get("EMBEDDED"))
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
