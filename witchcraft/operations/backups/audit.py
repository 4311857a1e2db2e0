"""The audit rows of backups and restores, written in the configured (source) database."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.audit import audit_event
from witchcraft.platform import rls

BACKUP_CREATED = "backup_created"
BACKUP_RESTORED = "backup_restored"


def record(
    event: str, *, file_name: str, details: dict[str, Any], severity: str | None = None
) -> int:
    """Write one ``audit_logs`` row in the service context; return its id."""
    with transaction.atomic(), rls.service_context():
        return audit_event(
            event,
            details={"file": file_name, **details},
            target_type="backup",
            target_id=file_name,
            severity=severity,
        )
