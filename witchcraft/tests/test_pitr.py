"""Point-in-time recovery's own logic, without Barman (the real tool is in test_pitr_live.py):
Barman's configuration holds no secret, a target time is read strictly, the backup a restore
starts from, and the backups' state as the monitoring figures say it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from witchcraft.operations.backups.servers import Server
from witchcraft.operations.pitr import PitrError, barman
from witchcraft.operations.pitr.restore import choose_backup, parse_target
from witchcraft.operations.pitr.status import BackupStatus

NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


def test_barman_s_configuration_names_the_server_but_never_its_password(settings, tmp_path):
    settings.PITR_DIR = tmp_path / "pitr"
    settings.PITR_RETENTION_DAYS, settings.PITR_MIN_BACKUPS = 9, 3
    server = Server(
        alias="default",
        database="witchcraft",
        embedded=False,
        params={"host": "db.internal", "port": 5432, "user": "witchcraft", "sslmode": "require"},
        password="s3cret-p%ss",
    )
    text = barman.config_text(server, Path("/usr/lib/postgresql/15/bin"))
    assert "s3cret" not in text and "password" not in text
    assert "conninfo = dbname=witchcraft host=db.internal port=5432 user=witchcraft" in text
    assert "retention_policy = RECOVERY WINDOW OF 9 DAYS" in text
    assert "minimum_redundancy = 3" in text
    assert "path_prefix = /usr/lib/postgresql/15/bin" in text
    assert server.child_env()["PGPASSWORD"] == "s3cret-p%ss"  # it goes in the environment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-07 14:04:59+00", datetime(2026, 12, 7, 14, 4, 59, tzinfo=UTC)),
        ("2026-12-07T15:04:59.5+01:00", datetime(2026, 12, 7, 14, 4, 59, 500000, tzinfo=UTC)),
    ],
)
def test_a_target_time_is_read_with_its_offset(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-12-07 14:04:59", "no time zone"),
        ("yesterday", "is not a time"),
        ("2026-13-01 00:00+00", "is not a time"),
        ("99999-01-01 00:00+00", "is not a time"),
        ("2026-12-07\x0014:00+00", "is not a time"),
    ],
)
def test_a_target_time_that_is_not_one_is_refused(text, message):
    with pytest.raises(PitrError, match=message):
        parse_target(text)


def _backup(backup_id: str, ended: datetime, status: str = "DONE") -> barman.BaseBackup:
    return barman.BaseBackup(
        backup_id=backup_id,
        status=status,
        begin_time=ended - timedelta(minutes=1),
        end_time=ended,
        size_bytes=1,
    )


def test_a_restore_starts_from_the_newest_backup_that_ended_before_the_target():
    day = timedelta(days=1)
    backups = [
        _backup("a", NOW - 3 * day),
        _backup("b", NOW - 2 * day),
        _backup("broken", NOW - day, status="FAILED"),
        _backup("c", NOW),
    ]
    assert choose_backup(backups, NOW - day).backup_id == "b"  # the failed one is skipped
    assert choose_backup(backups, NOW - 2 * day).backup_id == "b"  # ended exactly then
    assert choose_backup(backups, None).backup_id == "c"
    with pytest.raises(PitrError, match="before the oldest restorable time"):
        choose_backup(backups, NOW - 4 * day)
    with pytest.raises(PitrError, match="no base backup yet"):
        choose_backup([_backup("x", NOW, status="FAILED")], None)


def test_the_state_is_stale_past_either_threshold_and_never_when_off(settings):
    settings.BACKUP_STALE_HOURS, settings.WAL_STALE_MINUTES = 26, 5
    fresh = BackupStatus(
        enabled=True,
        now=NOW,
        last_base_backup_end=NOW - timedelta(hours=25),
        safe_through=NOW - timedelta(minutes=4),
    )
    assert (fresh.state, fresh.problems) == ("ok", [])
    assert fresh.base_backup_age_seconds == 25 * 3600 and fresh.wal_behind_seconds == 240

    old = BackupStatus(
        enabled=True,
        now=NOW,
        last_base_backup_end=NOW - timedelta(hours=27),
        safe_through=NOW - timedelta(minutes=6),
    )
    assert old.state == "stale"
    assert old.problems == [
        "the last base backup is 27 h old (more than 26 h)",
        "WAL archiving is 6 min behind (more than 5 min)",
    ]
    never = BackupStatus(enabled=True, now=NOW)
    assert never.problems == [
        "no base backup has been taken",
        "WAL archiving has not been seen working",
    ]
    assert BackupStatus(enabled=False, now=NOW).state == "off"
