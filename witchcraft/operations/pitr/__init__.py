"""Point-in-time recovery with Barman: WAL streamed continuously, a base backup a day, retention
by a recovery window with a floor on the count, a weekly restore drill, and ``manage.py restore
--to-time`` into a new data directory and port.

Modules: ``barman`` (its configuration, written from the settings, and its commands),
``manifest`` (a base backup checked against its ``backup_manifest``), ``restore`` (a backup plus
WAL replayed into a new server, verified), ``jobs`` (the worker's backup jobs, recorded in
``maintenance_runs``) and ``status`` (what monitoring, ``/metrics`` and ``/healthz`` show).
"""

from witchcraft.operations.pitr.errors import PitrError

__all__ = ["PitrError"]
