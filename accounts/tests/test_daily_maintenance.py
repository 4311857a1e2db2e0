"""daily_maintenance(), cleanup_old_audit_logs() and their commands.

The functions are called the way the commands call them: inside ``transaction.atomic()`` and
``rls.service_context()``, i.e. as the runtime role. Rows are made old with UPDATEs run by the
test connection outside any context, which is the owner (it bypasses row-level security).
"""

import hashlib
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import AccessToken, AuditLog, EmailVerificationToken, PasswordResetToken
from agents.models import AgentSession, AgentSessionStats
from witchcraft.platform import rls
from witchcraft.platform.maintenance_command import DRY_RUN_NOTICE
from witchcraft.testing.factories import (
    AgentMessageFactory,
    AgentSessionFactory,
    AuditLogFactory,
    UserFactory,
)
from witchcraft.testing.maintenance import (
    CONTEXTS,
    SERVICE_ONLY,
    run_as_owner,
    runtime_role_outcomes,
)

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {
    "expired_tokens_deleted",
    "reset_tokens_deleted",
    "verification_tokens_deleted",
    "sessions_ended",
    "audit_logs_archived",
    "audit_rows_compressed",
    "audit_rows_waiting",
    "partitions_created",
    "usage_partitions_archived",
    "usage_partitions_waiting",
    "session_stats_rows",
    "usage_totals_rows",
}


def _service_call(sql: str, params=()):
    """Run ``sql`` in the service context (as witchcraft_app) and return its single value."""
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        value = cursor.fetchone()[0]
    return json.loads(value) if isinstance(value, str) else value


def _daily() -> dict:
    return _service_call("SELECT public.daily_maintenance()")


def _owner_sql(sql: str, params=()) -> None:
    """As the owner (no RLS context): make rows look old, drop a partition, ..."""
    assert connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))


def _owner_value(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchone()[0]


def _hash(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _access_token(user, seed: str, **fields) -> AccessToken:
    return AccessToken.objects.create(
        user=user,
        name=seed,
        token_hash=_hash(seed),
        prefix=seed[:8],
        expires_at=timezone.now() + timedelta(days=30),
        **fields,
    )


def _make_old(table: str, pk: int, **intervals: str) -> None:
    """Set each given column of one row to now() minus the given interval."""
    assignments = ", ".join(f"{column} = now() - %s::interval" for column in intervals)
    _owner_sql(
        f"UPDATE {table} SET {assignments} WHERE id = %s",  # table and columns chosen by the tests
        [*intervals.values(), pk],
    )


# --- tokens -----------------------------------------------------------------------------------


def test_deletes_expired_and_long_revoked_access_tokens_and_keeps_the_rest(user):
    fresh = _access_token(user, "fresh")
    expired = _access_token(user, "expired")
    _make_old("access_tokens", expired.pk, created_at="40 days", expires_at="1 minute")
    revoked_long_ago = _access_token(user, "revoked-long-ago")
    _make_old("access_tokens", revoked_long_ago.pk, created_at="40 days", revoked_at="31 days")
    revoked_recently = _access_token(user, "revoked-recently")
    _make_old("access_tokens", revoked_recently.pk, revoked_at="2 days")

    summary = _daily()

    assert summary["expired_tokens_deleted"] == 2
    remaining = set(AccessToken.objects.values_list("pk", flat=True))
    assert remaining == {fresh.pk, revoked_recently.pk}


@pytest.mark.parametrize(
    ("model", "key", "extra"),
    [
        (PasswordResetToken, "reset_tokens_deleted", {}),
        (EmailVerificationToken, "verification_tokens_deleted", {"email": "new@example.com"}),
    ],
)
def test_deletes_one_time_tokens_that_are_used_or_expired(user, model, key, extra):
    def token(seed: str):
        return model.objects.create(
            user=user,
            token_hash=_hash(f"{model.__name__}-{seed}"),
            expires_at=timezone.now() + timedelta(hours=1),
            **extra,
        )

    unused = token("unused")
    used = token("used")
    model.objects.filter(pk=used.pk).update(used_at=timezone.now())
    expired = token("expired")
    _make_old(model._meta.db_table, expired.pk, created_at="2 hours", expires_at="1 hour")

    summary = _daily()

    assert summary[key] == 2
    assert list(model.objects.values_list("pk", flat=True)) == [unused.pk]


# --- agent sessions ---------------------------------------------------------------------------


def test_ends_sessions_inactive_for_24_hours_at_their_last_activity(user):
    recent = AgentSessionFactory(user=user)
    _make_old("agent_sessions", recent.pk, started_at="30 hours", last_activity_at="23 hours")
    stale = AgentSessionFactory(user=user)
    _make_old("agent_sessions", stale.pk, started_at="30 hours", last_activity_at="25 hours")
    already_ended = AgentSessionFactory(user=user)
    _make_old("agent_sessions", already_ended.pk, started_at="9 days", last_activity_at="8 days")
    AgentSession.objects.filter(pk=already_ended.pk).update(
        is_active=False, ended_at=timezone.now() - timedelta(days=7)
    )
    before = {s.pk: s for s in AgentSession.objects.all()}

    summary = _daily()

    assert summary["sessions_ended"] == 1
    after = {s.pk: s for s in AgentSession.objects.all()}
    assert after[stale.pk].is_active is False
    assert after[stale.pk].ended_at == before[stale.pk].last_activity_at
    assert after[stale.pk].last_activity_at == before[stale.pk].last_activity_at
    for untouched in (recent.pk, already_ended.pk):
        assert (after[untouched].is_active, after[untouched].ended_at) == (
            before[untouched].is_active,
            before[untouched].ended_at,
        )


# --- audit logs -------------------------------------------------------------------------------


def test_stores_audit_logs_older_than_90_days_compressed_with_every_column(user):
    actor = UserFactory(is_staff=True)
    old = AuditLogFactory(
        user=user,
        actor=actor,
        event_type="password_changed",
        severity="warning",
        ip="203.0.113.7",
        user_agent="Witchcraft/1.0",
        request_id="req-1",
        target_type="user",
        target_id=str(user.pk),
        details={"via": "settings"},
    )
    _make_old("audit_logs", old.pk, created_at="91 days")
    recent = AuditLogFactory(user=user)
    _make_old("audit_logs", recent.pk, created_at="89 days")
    old_values = AuditLog.objects.filter(pk=old.pk).values().get()

    summary = _daily()

    assert (summary["audit_logs_archived"], summary["audit_rows_compressed"]) == (1, 1)
    assert list(AuditLog.objects.values_list("pk", flat=True)) == [recent.pk]
    assert _owner_value("SELECT count(*) FROM audit_logs_archive") == 0
    assert _owner_value("SELECT count(*) FROM archive.audit_log_batches") == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, created_at, user_id, actor_id, event_type, severity, host(ip), user_agent,"
            " request_id, target_type, target_id, details"
            " FROM archived_audit_logs(NULL, NULL, NULL)"
        )
        rows = cursor.fetchall()
    assert len(rows) == 1
    (pk, created_at, user_id, actor_id, event, severity, ip, agent, request, ttype, tid,
     details) = rows[0]  # fmt: skip
    assert (pk, created_at, user_id, actor_id) == (
        old.pk,
        old_values["created_at"],
        user.pk,
        actor.pk,
    )
    assert (event, severity, ip, agent, request, ttype, tid) == (
        "password_changed",
        "warning",
        "203.0.113.7",
        "Witchcraft/1.0",
        "req-1",
        "user",
        str(user.pk),
    )
    assert (json.loads(details) if isinstance(details, str) else details) == {"via": "settings"}


def test_cleanup_old_audit_logs_takes_the_age_in_days(user):
    ages = {"2 days": None, "8 days": None, "31 days": None}
    for age in ages:
        ages[age] = AuditLogFactory(user=user).pk
        _make_old("audit_logs", ages[age], created_at=age)

    assert _service_call("SELECT public.cleanup_old_audit_logs(%s)", [7]) == 2
    assert list(AuditLog.objects.values_list("pk", flat=True)) == [ages["2 days"]]
    assert _owner_value("SELECT count(*) FROM audit_logs_archive") == 2
    assert _service_call("SELECT public.cleanup_old_audit_logs(%s)", [7]) == 0


@pytest.mark.parametrize("days", [0, -5, None])
def test_cleanup_old_audit_logs_refuses_less_than_one_day(days):
    with pytest.raises(DatabaseError) as caught:
        _service_call("SELECT public.cleanup_old_audit_logs(%s)", [days])
    assert caught.value.__cause__.sqlstate == "22023"
    assert "days must be at least 1" in str(caught.value)


# --- partitions, statistics -------------------------------------------------------------------


def test_creates_the_missing_usage_partitions_of_the_next_three_months():
    in_two_months = _owner_value(
        "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months',"
        ' \'"ai_usage_requests_y"YYYY"m"MM\')'
    )
    _owner_sql(f"DROP TABLE public.{in_two_months}")

    assert _daily()["partitions_created"] == 1
    assert _owner_value("SELECT to_regclass(%s) IS NOT NULL", [f"public.{in_two_months}"])
    assert _owner_value(
        "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
        [f"public.{in_two_months}"],
    )


def test_refreshes_agent_session_stats(user):
    session = AgentSessionFactory(user=user)
    AgentMessageFactory(session=session, role="user", position=1)
    AgentMessageFactory(session=session, role="assistant", position=2)
    assert not AgentSessionStats.objects.filter(session=session).exists()

    summary = _daily()

    assert summary["session_stats_rows"] == AgentSession.objects.count()
    stats = AgentSessionStats.objects.get(session=session)
    assert (stats.user_messages, stats.assistant_messages) == (1, 1)


# --- the whole job ----------------------------------------------------------------------------


def _old_rows_of_every_kind(user) -> None:
    token = _access_token(user, "expired")
    _make_old("access_tokens", token.pk, created_at="40 days", expires_at="1 day")
    reset = PasswordResetToken.objects.create(
        user=user, token_hash=_hash("reset"), expires_at=timezone.now() + timedelta(hours=1)
    )
    _make_old("password_reset_tokens", reset.pk, created_at="2 hours", expires_at="1 hour")
    EmailVerificationToken.objects.create(
        user=user,
        email=user.email,
        token_hash=_hash("verify"),
        expires_at=timezone.now() + timedelta(hours=1),
        used_at=timezone.now(),
    )
    session = AgentSessionFactory(user=user)
    _make_old("agent_sessions", session.pk, started_at="3 days", last_activity_at="2 days")
    log = AuditLogFactory(user=user)
    _make_old("audit_logs", log.pk, created_at="100 days")


def test_returns_every_count_and_a_second_run_changes_nothing(user):
    _old_rows_of_every_kind(user)
    AgentSessionFactory(user=user)  # active, fresh

    first = _daily()
    assert set(first) == SUMMARY_KEYS
    assert {k: v for k, v in first.items() if k != "partitions_created"} == {
        "expired_tokens_deleted": 1,
        "reset_tokens_deleted": 1,
        "verification_tokens_deleted": 1,
        "sessions_ended": 1,
        "audit_logs_archived": 1,
        "audit_rows_compressed": 1,
        "audit_rows_waiting": 0,
        "usage_partitions_archived": 0,
        "usage_partitions_waiting": 0,
        "session_stats_rows": 2,
        "usage_totals_rows": 0,
    }

    second = _daily()
    assert second == {**dict.fromkeys(SUMMARY_KEYS, 0), "session_stats_rows": 2}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT public.daily_maintenance()",
        "SELECT public.cleanup_old_audit_logs(90)",
        "SELECT public.refresh_agent_session_stats()",
    ],
)
@pytest.mark.parametrize("who", ["user", "admin", "anonymous"])
def test_only_the_service_context_may_run_it(sql, who):
    log = AuditLogFactory()
    _make_old("audit_logs", log.pk, created_at="100 days")
    caller = {
        "user": lambda: UserFactory(),
        "admin": lambda: UserFactory(is_staff=True),
        "anonymous": lambda: None,
    }[who]()
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.user_context(caller),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert caught.value.__cause__.sqlstate == "42501"
    assert AuditLog.objects.filter(pk=log.pk).exists()


def test_the_app_role_cannot_call_the_functions_it_is_not_granted():
    """ensure_usage_partitions stays revoked: daily_maintenance reaches it as the owner."""
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.service_context(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT public.ensure_usage_partitions(3)")
    assert caught.value.__cause__.sqlstate == "42501"


# --- audit_logs_archive: row-level security ---------------------------------------------------


def _archive_one(user) -> None:
    log = AuditLogFactory(user=user)
    _make_old("audit_logs", log.pk, created_at="100 days")
    assert _service_call("SELECT public.cleanup_old_audit_logs(90)") == 1


def _visible_archive_rows(caller) -> int:
    with transaction.atomic(), rls.user_context(caller), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_logs_archive")
        return cursor.fetchone()[0]


def test_the_owner_and_admins_read_the_archive_as_they_read_audit_logs(user):
    """The owner reads their own archived events (their data export), staff every one."""
    _archive_one(user)
    assert _visible_archive_rows(UserFactory(is_staff=True)) == 1
    assert _visible_archive_rows(user) == 1
    assert _visible_archive_rows(UserFactory()) == 0
    assert _visible_archive_rows(None) == 0


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO audit_logs_archive SELECT * FROM audit_logs_archive",
        "UPDATE audit_logs_archive SET event_type = 'x'",
        "DELETE FROM audit_logs_archive",
    ],
)
def test_nobody_writes_the_archive_through_the_app_role(user, sql):
    _archive_one(user)
    admin = UserFactory(is_staff=True)
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.user_context(admin),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert caught.value.__cause__.sqlstate == "42501"
    assert _owner_value("SELECT count(*) FROM audit_logs_archive") == 1


# --- commands ---------------------------------------------------------------------------------


def _command(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_daily_maintenance_command_prints_aligned_counts(user):
    _old_rows_of_every_kind(user)

    lines = _command("daily_maintenance").splitlines()

    assert [line.split(":")[0] for line in lines] == [
        "expired_tokens_deleted",
        "reset_tokens_deleted",
        "verification_tokens_deleted",
        "sessions_ended",
        "audit_logs_archived",
        "audit_rows_compressed",
        "audit_rows_waiting",
        "partitions_created",
        "usage_partitions_archived",
        "usage_partitions_waiting",
        "session_stats_rows",
        "usage_totals_rows",
    ]
    assert len({line.rindex(" ") for line in lines}) == 1  # the values line up
    assert "sessions_ended:              1" in lines
    # The old row was archived; what is left is the command's record of its own run.
    assert list(AuditLog.objects.values_list("event_type", flat=True)) == ["maintenance_run"]


def test_daily_maintenance_command_json(user):
    _old_rows_of_every_kind(user)
    summary = json.loads(_command("daily_maintenance", "--json"))
    assert set(summary) == SUMMARY_KEYS
    assert summary["audit_logs_archived"] == 1


def test_daily_maintenance_dry_run_changes_nothing(user):
    _old_rows_of_every_kind(user)
    counts = (
        AccessToken.objects.count(),
        PasswordResetToken.objects.count(),
        EmailVerificationToken.objects.count(),
        AgentSession.objects.filter(is_active=True).count(),
        AuditLog.objects.count(),
        AgentSessionStats.objects.count(),
    )

    output = _command("daily_maintenance", "--dry-run")

    assert output.splitlines()[0] == DRY_RUN_NOTICE
    assert "expired_tokens_deleted:      1" in output  # what would change
    assert counts == (
        AccessToken.objects.count(),
        PasswordResetToken.objects.count(),
        EmailVerificationToken.objects.count(),
        AgentSession.objects.filter(is_active=True).count(),
        AuditLog.objects.count(),
        AgentSessionStats.objects.count(),
    )
    assert _owner_value("SELECT count(*) FROM audit_logs_archive") == 0
    assert _owner_value("SELECT count(*) FROM archive.audit_log_batches") == 0
    assert _owner_value("SELECT current_setting('role')") == "none"


def test_cleanup_old_audit_logs_command_takes_days(user):
    for age in ("10 days", "40 days", "100 days"):
        _make_old("audit_logs", AuditLogFactory(user=user).pk, created_at=age)

    assert _command("cleanup_old_audit_logs").strip() == "audit_logs_archived: 1"
    assert _command("cleanup_old_audit_logs", "--days", "30", "--dry-run").splitlines() == [
        DRY_RUN_NOTICE,
        "audit_logs_archived: 1",
    ]
    assert AuditLog.objects.count() == 2
    assert json.loads(_command("cleanup_old_audit_logs", "--days", "5", "--json")) == {
        "audit_logs_archived": 2
    }
    assert not AuditLog.objects.exists()


def test_cleanup_old_audit_logs_command_refuses_zero_days_in_one_line():
    with pytest.raises(CommandError) as caught:
        _command("cleanup_old_audit_logs", "--days", "0")
    assert str(caught.value) == "cleanup_old_audit_logs: days must be at least 1, not 0"


# --- the accounts step: account_tokens_delete_expired -----------------------------------------

TOKENS_STEP = "public.account_tokens_delete_expired()"


def test_account_tokens_delete_expired_counts_each_kind_and_a_second_run_deletes_nothing(user):
    _old_rows_of_every_kind(user)
    fresh = _access_token(user, "fresh")

    assert run_as_owner(TOKENS_STEP) == {
        "expired_tokens_deleted": 1,
        "reset_tokens_deleted": 1,
        "verification_tokens_deleted": 1,
    }
    assert list(AccessToken.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not PasswordResetToken.objects.exists()
    assert not EmailVerificationToken.objects.exists()
    # Only its own domain: the idle session and the old audit event wait for their steps.
    assert AgentSession.objects.filter(is_active=True).count() == 1
    assert AuditLog.objects.count() == 1

    assert run_as_owner(TOKENS_STEP) == {
        "expired_tokens_deleted": 0,
        "reset_tokens_deleted": 0,
        "verification_tokens_deleted": 0,
    }


def test_account_tokens_delete_expired_is_the_service_contexts_only():
    """Not granted to the runtime role in any context; granted, its own check refuses."""
    assert runtime_role_outcomes(TOKENS_STEP) == dict.fromkeys(CONTEXTS, "not granted")
    assert runtime_role_outcomes(TOKENS_STEP, granted=True) == SERVICE_ONLY
