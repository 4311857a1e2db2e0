"""Usage partitions past USAGE_ARCHIVE_AFTER_MONTHS move to the archive schema (daily
maintenance: archive_usage_partitions), under the same row-level security, with the roll-ups
untouched.

Months are counted from the database's clock (``now()`` of the test's transaction), which is
the clock the SQL uses; old partitions are made with ensure_usage_partitions(0, months_back).
"""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from usage import dashboard_selectors, services
from usage.me_selectors import usage_by_day_for_user
from usage.models import AIUsageRequest
from usage.selectors import usage_monthly_for_user
from witchcraft.operations import maintenance
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db


def _value(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchone()[0]


def _this_month() -> date:
    return _value("SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date")


def _months_ago(n: int) -> date:
    first = _this_month()
    index = first.year * 12 + first.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def _name(month: date) -> str:
    return f"ai_usage_requests_y{month:%Y}m{month:%m}"


def _schema_of(table: str) -> str | None:
    return _value(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = %s AND n.nspname IN ('public', 'archive')",
        [table],
    )


def _record(user, model, month: date, *, tokens: int = 1000) -> int:
    with transaction.atomic(), rls.service_context():
        return services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=tokens,
            output_tokens=tokens // 2,
            cost=Decimal("0.25"),
            latency_ms=100,
            created_at=datetime(month.year, month.month, 10, 12, tzinfo=UTC),
        )


def _daily(**params) -> dict:
    """daily_maintenance() as the scheduled job runs it (the settings' retention)."""
    sql = maintenance.JOBS["daily_maintenance"]
    args = maintenance.job_params("daily_maintenance") | params
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute(sql, args)
        summary = cursor.fetchone()[0]
    return json.loads(summary) if isinstance(summary, str) else summary


@pytest.fixture
def old_partitions():
    """Monthly partitions back to 15 months ago (the migration makes one month back)."""
    _value("SELECT ensure_usage_partitions(0, 15)")


def _archived_ids(**context) -> set[int]:
    identity = rls.Identity(**context)
    with transaction.atomic(), rls.identity_context(identity), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM archive.ai_usage_requests")
        return {row[0] for row in cursor.fetchall()}


def test_partitions_past_the_retention_move_to_the_archive_with_their_rows(
    old_partitions, user, catalog_model
):
    old = _record(user, catalog_model, _months_ago(13))
    recent = _record(user, catalog_model, _months_ago(11))

    summary = _daily()

    # 15, 14 and 13 months ago are archived; 12 months ago has not wholly passed the 12 months.
    assert summary["usage_partitions_archived"] == 2  # the default: at most 2 a run
    assert summary["usage_partitions_waiting"] == 1
    assert _daily()["usage_partitions_archived"] == 1
    assert _daily()["usage_partitions_archived"] == 0
    for months in (15, 14, 13):
        assert _schema_of(_name(_months_ago(months))) == "archive"
    for months in (12, 11, 0):
        assert _schema_of(_name(_months_ago(months))) == "public"
    live = set(AIUsageRequest.objects.values_list("id", flat=True))
    assert recent in live and old not in live
    assert _value("SELECT tableoid::regclass::text FROM archive.ai_usage_requests WHERE id = %s",
                  [old]) == f"archive.{_name(_months_ago(13))}"  # fmt: skip
    # The moved partition keeps row-level security, enabled and forced, and grants nothing.
    assert _value(
        "SELECT relrowsecurity AND relforcerowsecurity"
        " AND NOT has_table_privilege('witchcraft_app', oid, 'SELECT')"
        " FROM pg_class WHERE oid = %s::regclass",
        [f"archive.{_name(_months_ago(13))}"],
    )


def test_the_retention_and_the_bound_come_from_the_settings(old_partitions):
    with override_settings(USAGE_ARCHIVE_AFTER_MONTHS=14, USAGE_ARCHIVE_PARTITIONS_PER_RUN=5):
        assert _daily()["usage_partitions_archived"] == 1  # 15 months ago only
    with override_settings(USAGE_ARCHIVE_PARTITIONS_PER_RUN=0):
        summary = _daily()
    assert (summary["usage_partitions_archived"], summary["usage_partitions_waiting"]) == (0, 2)
    assert _schema_of(_name(_months_ago(14))) == "public"


def test_the_archive_is_read_under_the_same_policies(old_partitions, user, catalog_model):
    other = factories.UserFactory()
    staff = factories.UserFactory(is_staff=True)
    mine = _record(user, catalog_model, _months_ago(14))
    theirs = _record(other, catalog_model, _months_ago(14))
    _daily(usage_partitions_per_run=10)

    assert _archived_ids(user_id=user.pk) == {mine}
    assert _archived_ids(user_id=other.pk) == {theirs}
    assert _archived_ids(user_id=staff.pk, is_admin=True) == {mine, theirs}
    assert _archived_ids() == set()  # anonymous
    # Nobody writes the archive, and its partitions cannot be read around the parent's policies.
    for sql in (
        "DELETE FROM archive.ai_usage_requests",
        "UPDATE archive.ai_usage_requests SET cost = 0",
        f"SELECT * FROM archive.{_name(_months_ago(14))}",
    ):
        with (
            pytest.raises(DatabaseError, match="permission denied"),
            transaction.atomic(),
            rls.user_context(staff),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)


def test_the_roll_ups_keep_the_archived_months_on_every_page(old_partitions, user, catalog_model):
    staff = factories.UserFactory(is_staff=True)
    month = _months_ago(14)
    _record(user, catalog_model, month, tokens=3000)
    _value("SELECT refresh_usage_daily_totals(NULL)")
    start, end = month, month + timedelta(days=27)

    def pages():
        with transaction.atomic(), rls.user_context(user):
            own = (
                usage_monthly_for_user(user_id=user.pk),
                usage_by_day_for_user(user_id=user.pk, date_from=start, date_to=end),
            )
        with transaction.atomic(), rls.user_context(staff):
            everyone = dashboard_selectors.all_users_days(start, end, count_users=True)
            top = dashboard_selectors.top_users_by_cost(year=month.year, month=month.month)
        return own, everyone, top

    before = pages()
    assert before[0][0] and any(day.usage.requests for day in before[0][1])
    _daily(usage_partitions_per_run=10)
    assert _schema_of(_name(month)) == "archive"
    assert pages() == before


def test_archive_usage_partitions_refuses_nonsense_and_other_callers(old_partitions, user):
    for months, per_run in ((0, 1), (121, 1), (12, -1), (None, 1)):
        with (
            pytest.raises(DatabaseError, match="must be between"),
            transaction.atomic(),
            rls.service_context(),
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT archive_usage_partitions(%s, %s)", [months, per_run])
    with (
        pytest.raises(DatabaseError, match="only the service context"),
        transaction.atomic(),
        rls.user_context(user),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT archive_usage_partitions(12, 1)")


def test_the_archive_keeps_which_token_sent_a_request(old_partitions, catalog_model):
    """ai_usage_requests.access_token_id (issue 19) exists on the archive too, so a partition
    made after the column was added still attaches there, and its rows keep the token id."""
    from accounts import tokens
    from witchcraft.testing.factories import UserFactory

    user = UserFactory(email_verified_at=datetime.now(UTC))
    with transaction.atomic(), rls.user_context(user):
        token = tokens.token_issue(user_id=user.pk, name="old script").token
    month = _months_ago(13)
    with transaction.atomic(), rls.service_context():
        old = services.usage_record(
            user_id=user.pk,
            provider_id=catalog_model.provider_id,
            model_id=catalog_model.pk,
            input_tokens=10,
            output_tokens=5,
            created_at=datetime(month.year, month.month, 10, 12, tzinfo=UTC),
            access_token_id=token.pk,
        )
    _daily(usage_partitions_per_run=3)
    assert _schema_of(_name(month)) == "archive"
    assert (
        _value("SELECT access_token_id FROM archive.ai_usage_requests WHERE id = %s", [old])
        == token.pk
    )
