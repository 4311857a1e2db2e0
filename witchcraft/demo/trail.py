"""The demo accounts' security trail: ``audit_logs``, and ``audit_logs_archive`` for events
older than the 90 days daily maintenance keeps (moved there at its first run after them)."""

from __future__ import annotations

import random

from accounts.audit import severity_of
from witchcraft.demo import bulk, phrases
from witchcraft.demo.bulk import esc, ts
from witchcraft.demo.plan import Person

AUDIT_COLUMNS = (
    "id", "created_at", "user_id", "actor_id", "event_type", "severity", "ip", "user_agent",
    "request_id", "target_type", "target_id", "details",
)  # fmt: skip
ARCHIVE_COLUMNS = (*AUDIT_COLUMNS, "archived_at")

DAY = bulk.US_PER_DAY
HOUR = 3600 * bulk.US_PER_SECOND
RETENTION = 90 * DAY  # daily_maintenance archives older events
MAINTENANCE_HOUR = 2  # daily_maintenance runs at 02:00 UTC


class Trail:
    """Audit events of demo people, each as its person did it (actor = user)."""

    def __init__(self, loader: bulk.Loader, ids: bulk.Ids, now: int, rng: random.Random):
        self.audit = loader.table("audit_logs", AUDIT_COLUMNS)
        self.archive = loader.table("audit_logs_archive", ARCHIVE_COLUMNS)
        self.ids = ids
        self.now = now
        self.rng = rng

    def event(
        self,
        person: Person,
        at: int,
        event: str,
        ip: str,
        *,
        details=None,
        target: tuple[str, int] | None = None,
        severity: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        event_id = self.ids.next()
        target_type, target_id = target if target is not None else ("", "")
        line = (
            f"{event_id}\t{ts(at)}\t{person.id}\t{person.id}\t{event}\t"
            f"{severity or severity_of(event)}\t{ip}\t{esc(user_agent or person.user_agent)}\t"
            f"{self.rng.getrandbits(128):032x}\t{target_type}\t{target_id}\t"
            f"{esc(phrases.json_text(details or {}))}"
        )
        if at < self.now - RETENTION:
            # Moved by the first daily maintenance (02:00 UTC) after 90 days.
            archived = ((at + RETENTION) // DAY + 1) * DAY + MAINTENANCE_HOUR * HOUR
            self.archive.add(f"{line}\t{ts(min(archived, self.now))}")
        else:
            self.audit.add(line)
