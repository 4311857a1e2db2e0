"""A database that does not answer, for real: the connection is pointed at a port where nothing
listens (connection refused), so every query of this thread fails the way an outage makes it."""

from contextlib import contextmanager

from django.db import connection


@contextmanager
def unreachable(django_db_blocker):
    """Every new connection of this thread is refused until the block ends (then restored).
    Use it outside a test transaction: the open connection is closed first."""
    with django_db_blocker.unblock():
        connection.close()
        saved = dict(connection.settings_dict)
        connection.settings_dict.update(HOST="127.0.0.1", PORT=1, EMBEDDED=False)
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)
