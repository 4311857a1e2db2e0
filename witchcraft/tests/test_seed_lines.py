"""Lines of the seed's "Maintenance Tasks" and "Performance Optimization" checked as the seed
writes them (README "The seed, line by line" maps every other line to its own tests).

- The seed's SQL, word for word, run the way an operator runs it from ``psql``: as the owner
  role, with no role or ``app.*`` setting (the service context, for ``auth.is_service()``).
- "Use aggregations (daily/monthly) instead of raw data": every page and API read that shows
  totals or charts reads the roll-ups, never the raw usage rows.
"""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditLog
from agents.models import AgentSessionStats
from usage import services
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

# The seed's "Maintenance Tasks", as it prints them.
SEED_DAILY = "SELECT daily_maintenance();"
SEED_MONTHLY = "SELECT monthly_maintenance();"
SEED_MANUAL = """
-- Cleanup old audit logs (90+ days)
SELECT cleanup_old_audit_logs(90);

-- Recompute session stats
REFRESH MATERIALIZED VIEW agent_session_stats;
"""


def _as_psql(sql: str):
    """Run ``sql`` on the test connection, which is what ``psql`` as the owner is: no role
    set, no identity settings. Returns the last statement's first value, if it has one."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('role'), current_setting('app.user_id', true)")
        assert cursor.fetchone() in {("none", None), ("none", "")}
        cursor.execute(sql)
        value = cursor.fetchone()[0] if cursor.description else None
    return json.loads(value) if isinstance(value, str) else value


def _age(table: str, pk: int, interval: str) -> None:
    with connection.cursor() as cursor:
        # The table is one of this module's constants.
        cursor.execute(
            f"UPDATE {table} SET created_at = now() - %s::interval WHERE id = %s", [interval, pk]
        )


def test_the_manual_block_runs_as_written():
    old, recent = factories.AuditLogFactory(), factories.AuditLogFactory()
    _age("audit_logs", old.pk, "91 days")
    _age("audit_logs", recent.pk, "89 days")
    session = factories.AgentSessionFactory()
    factories.AgentMessageFactory(session=session, role="user", position=1)
    assert not AgentSessionStats.objects.filter(session=session).exists()

    with connection.cursor() as cursor:
        cursor.execute(SEED_MANUAL)  # both statements, comments and all

    # Moved to the uncompressed archive (daily maintenance compresses it later), not deleted.
    assert list(AuditLog.objects.values_list("pk", flat=True)) == [recent.pk]
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM audit_logs_archive")
        assert cursor.fetchall() == [(old.pk,)]
    assert AgentSessionStats.objects.get(session=session).user_messages == 1


def test_cleanup_old_audit_logs_answers_how_many_it_moved():
    for age in ("100 days", "95 days", "3 days"):
        _age("audit_logs", factories.AuditLogFactory().pk, age)
    assert _as_psql("SELECT cleanup_old_audit_logs(90);") == 2
    assert _as_psql("SELECT cleanup_old_audit_logs(90);") == 0


def test_the_daily_and_monthly_jobs_run_as_written():
    session = factories.AgentSessionFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE agent_sessions SET started_at = now() - interval '2 days',"
            " last_activity_at = now() - interval '25 hours' WHERE id = %s",
            [session.pk],
        )
    daily = _as_psql(SEED_DAILY)
    assert daily["sessions_ended"] == 1  # "End inactive sessions (24h+)"
    assert {"expired_tokens_deleted", "audit_logs_archived"} <= set(daily)
    monthly = _as_psql(SEED_MONTHLY)
    assert {"quotas_rolled", "subscriptions_renewed", "report_rows"} <= set(monthly)
    # Its report step stored last month's report (at least the month's 'total' row).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM usage_monthly_reports WHERE dimension = 'total'"
            " AND make_date(year, month, 1) = (date_trunc('month', now() AT TIME ZONE 'UTC')"
            " - interval '1 month')::date"
        )
        assert cursor.fetchone()[0] == 1


# --- aggregations instead of raw data ---------------------------------------------------------

STAFF_READS = [
    "/dashboard/",
    "/dashboard/usage/",
    "/dashboard/usage.csv",
    "/dashboard/reports/",
    "/dashboard/reports.csv",
    "/dashboard/quotas/",
]
USER_READS = ["/me/", "/me/usage/", "/me/usage.csv"]
API_READS = ["/api/v1/usage/summary", "/api/v1/usage/daily", "/api/v1/usage/monthly"]
# The roll-ups, and the SQL function that reads ai_usage_daily for the API's summary.
ROLL_UPS = (
    "ai_usage_daily",
    "ai_usage_monthly",
    "usage_monthly_reports",
    "user_quotas",
    "get_user_activity_summary",
)
READS = (
    [("staff", path) for path in STAFF_READS]
    + [("user", path) for path in USER_READS]
    + [("api", path) for path in API_READS]
)


@pytest.fixture
def member(settings):
    """A user with usage today and 40 days ago, recorded through the real flow (so the
    roll-ups hold it), and a bearer token."""
    settings.API_RATE_LIMITS = False
    model = factories.catalog_model()
    user = factories.api_member()
    now = datetime.now(UTC)
    for when in (now, now - timedelta(days=40)):
        with transaction.atomic(), rls.service_context():
            services.usage_record(
                user_id=user.pk,
                provider_id=model.provider_id,
                model_id=model.pk,
                input_tokens=1000,
                output_tokens=500,
                cost=Decimal("0.01"),
                latency_ms=100,
                created_at=when,
            )
    return user


def _reads(client, path: str, **headers) -> str:
    """The SQL a GET of ``path`` ran, lower-cased (the response must be a 200)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, **headers)
    assert response.status_code == 200, path
    return " ".join(query["sql"] for query in queries.captured_queries).lower()


@pytest.mark.parametrize(("who", "path"), READS)
def test_totals_and_charts_read_the_roll_ups_never_the_raw_usage_rows(client, member, who, path):
    headers = {}
    if who == "staff":
        client.force_login(factories.UserFactory(is_staff=True))
    elif who == "user":
        client.force_login(member)
    else:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {member.token}"
    sql = _reads(client, path, **headers)
    assert "ai_usage_requests" not in sql
    assert any(table in sql for table in ROLL_UPS), path
