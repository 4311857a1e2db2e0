"""``manage.py seed_demo``: the demo data agrees with itself the way the real flows make it.

The load runs with triggers and foreign-key checks off, so these tests check what those would
have guaranteed: roll-ups equal to their raw rows, session totals equal to what the triggers
compute (replayed with the triggers on), every reference resolving, quotas and alerts matching
the usage, and row-level security still holding for demo users. Small sizes, a fixed seed and
a fixed ``now``: the same data every time.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from accounts import scopes
from accounts.models import AuditLog, User
from usage.monthly_reports import monthly_report_generate
from witchcraft.demo import plan, reports, reset
from witchcraft.demo.plan import DemoOptions
from witchcraft.demo.progress import Progress
from witchcraft.demo.seeder import (
    DEMO_PRESENT,
    DEMO_SEEDED,
    NOT_PRIVILEGED,
    OTHER_USERS,
    DemoError,
    seed_demo,
)
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory

pytestmark = pytest.mark.django_db

USERS = 12
DAYS = 5
DEMO_USER_IDS = f"SELECT id FROM ({reset.DEMO_USERS}) d"


@pytest.fixture(scope="module")
def now():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def _seed(now, *, users=USERS, days=DAYS, seed=plan.DEFAULT_SEED, **flags):
    out = StringIO()
    result = seed_demo(
        DemoOptions(users=users, days=days, seed=seed, now=now),
        progress=Progress(out.write, live=False),
        **flags,
    )
    return result, out.getvalue()


@pytest.fixture
def seeded(now):
    result, _ = _seed(now)
    return result


def _rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _value(sql: str, params=None):
    return _rows(sql, params)[0][0]


# --- roll-ups, quotas, alerts ------------------------------------------------------------------
def test_the_load_has_the_expected_kinds_of_rows(seeded):
    for table in (
        "users",
        "user_profiles",
        "user_quotas",
        "user_subscriptions",
        "payment_history",
        "access_tokens",
        "audit_logs",
        "ai_usage_requests",
        "ai_usage_request_keys",
        "ai_usage_daily",
        "ai_usage_monthly",
        "agent_sessions",
        "agent_messages",
        "agent_tool_calls",
        "agent_feedback",
    ):
        assert seeded.rows[table] > 0, table
        assert _value(f"SELECT count(*) FROM public.{table}") >= seeded.rows[table], table
    assert seeded.rows["ai_usage_requests"] == seeded.rows["ai_usage_request_keys"]
    roles = dict(_rows("SELECT role, count(*) FROM agent_messages GROUP BY role"))
    assert roles.keys() >= {"user", "assistant", "tool"}
    statuses = dict(_rows("SELECT status, count(*) FROM ai_usage_requests GROUP BY status"))
    failed = sum(count for status, count in statuses.items() if status != "success")
    assert statuses.keys() >= {"success", "error"}
    assert 0.01 < failed / sum(statuses.values()) < 0.08
    assert _value("SELECT count(*) FROM ai_usage_requests_default") == 0
    assert _value("SELECT current_setting('session_replication_role')") == "origin"


def test_every_daily_rollup_row_is_the_sum_of_its_raw_rows_and_every_raw_row_is_rolled_up(
    seeded,
):
    mismatches = _rows(
        """
        WITH raw AS (
            SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS usage_date, provider_id,
                   model_id, count(*) AS request_count,
                   count(*) FILTER (WHERE status = 'success') AS success_count,
                   count(*) FILTER (WHERE status <> 'success') AS error_count,
                   sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                   sum(cached_input_tokens) AS cached_input_tokens,
                   sum(reasoning_tokens) AS reasoning_tokens, sum(total_tokens) AS total_tokens,
                   sum(cost) AS cost, coalesce(sum(latency_ms), 0) AS latency_ms_sum,
                   count(latency_ms) AS latency_count
              FROM ai_usage_requests GROUP BY 1, 2, 3, 4
        ), daily AS (
            SELECT user_id, usage_date, provider_id, model_id, request_count, success_count,
                   error_count, input_tokens, output_tokens, cached_input_tokens,
                   reasoning_tokens, total_tokens, cost, latency_ms_sum, latency_count
              FROM ai_usage_daily
        )
        SELECT * FROM (SELECT * FROM raw EXCEPT ALL SELECT * FROM daily) a
        UNION ALL
        SELECT * FROM (SELECT * FROM daily EXCEPT ALL SELECT * FROM raw) b
        """
    )
    assert mismatches == []
    assert _value("SELECT count(*) FROM ai_usage_daily") == seeded.rows["ai_usage_daily"] > 0


def test_monthly_rollup_is_the_sum_of_the_daily_rollup(seeded):
    mismatches = _rows(
        """
        WITH from_daily AS (
            SELECT user_id, extract(year FROM usage_date)::smallint AS year,
                   extract(month FROM usage_date)::smallint AS month,
                   sum(request_count)::integer, sum(success_count)::integer,
                   sum(error_count)::integer, sum(input_tokens)::bigint,
                   sum(output_tokens)::bigint, sum(cached_input_tokens)::bigint,
                   sum(reasoning_tokens)::bigint, sum(total_tokens)::bigint, sum(cost),
                   sum(latency_ms_sum)::bigint, sum(latency_count)::integer
              FROM ai_usage_daily GROUP BY 1, 2, 3
        ), monthly AS (
            SELECT user_id, year, month, request_count, success_count, error_count,
                   input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
                   total_tokens, cost, latency_ms_sum, latency_count
              FROM ai_usage_monthly
        )
        SELECT * FROM (SELECT * FROM from_daily EXCEPT ALL SELECT * FROM monthly) a
        UNION ALL
        SELECT * FROM (SELECT * FROM monthly EXCEPT ALL SELECT * FROM from_daily) b
        """
    )
    assert mismatches == []
    assert seeded.rows["ai_usage_monthly"] > 0


def test_quota_used_is_the_usage_of_the_current_month(seeded, now):
    rows = _rows(
        """
        SELECT q.user_id, q.tokens_used, q.cost_used, coalesce(sum(r.total_tokens), 0),
               coalesce(sum(r.cost), 0), q.period_start, q.period_end,
               t.monthly_token_limit, t.monthly_cost_limit, q.tokens_limit, q.cost_limit
          FROM user_quotas q
          JOIN user_subscriptions s
            ON s.user_id = q.user_id AND s.status IN ('trialing', 'active', 'past_due')
          JOIN subscription_tiers t ON t.id = s.tier_id
          LEFT JOIN ai_usage_requests r
            ON r.user_id = q.user_id AND r.created_at >= q.period_start
           AND r.created_at < q.period_end
         GROUP BY q.user_id, t.id
        """
    )
    assert len(rows) == USERS
    month = now.replace(day=1, hour=0)
    for user_id, tokens, cost, raw_tokens, raw_cost, start, end, *limits in rows:
        assert (tokens, cost) == (raw_tokens, raw_cost), user_id
        assert start == month and end == (month + timedelta(days=32)).replace(day=1)
        assert (limits[0], limits[1]) == (limits[2], limits[3]), "limits of the current plan"
    assert any(row[1] > 0 for row in rows)


def test_alerts_fire_where_the_quota_crossed_80_and_100_percent(seeded):
    # Crossings of the current period, from the quota (every alert there is open).
    expected = set(
        _rows(
            """
            SELECT q.user_id, t.alert_type, t.metric
              FROM user_quotas q
             CROSS JOIN LATERAL (VALUES
                    ('warning', 'tokens', 80, q.tokens_used::numeric, q.tokens_limit::numeric),
                    ('exceeded', 'tokens', 100, q.tokens_used::numeric, q.tokens_limit::numeric),
                    ('warning', 'cost', 80, q.cost_used, q.cost_limit),
                    ('exceeded', 'cost', 100, q.cost_used, q.cost_limit)
                   ) AS t(alert_type, metric, threshold, used, lim)
             WHERE t.lim > 0 AND t.used * 100 >= t.lim * t.threshold
            """
        )
    )
    actual = set(
        _rows(
            "SELECT a.user_id, a.alert_type, a.metric FROM usage_alerts a"
            " JOIN user_quotas q ON q.user_id = a.user_id AND a.period_start = q.period_start"
            " WHERE a.resolved_at IS NULL"
        )
    )
    assert actual == expected
    # Each alert's value is the running total at the row that crossed; the row before did not.
    wrong = _rows(
        """
        SELECT a.id FROM usage_alerts a
         CROSS JOIN LATERAL (
               SELECT sum(CASE a.metric WHEN 'tokens' THEN r.total_tokens ELSE r.cost END)
                      AS used
                 FROM ai_usage_requests r
                WHERE r.user_id = a.user_id AND r.created_at >= a.period_start
                  AND r.created_at <= a.triggered_at) upto
         WHERE a.value_at_trigger <> upto.used
            OR a.value_at_trigger * 100 < a.limit_at_trigger * a.threshold_percent
            OR a.notified_at < a.triggered_at
        """
    )
    assert wrong == []


def test_every_assistant_message_has_its_usage_row_linked_as_the_real_flow_links_it(seeded):
    unlinked = _rows(
        """
        SELECT m.id FROM agent_messages m
          LEFT JOIN ai_usage_requests r ON r.agent_message_id = m.id
          LEFT JOIN ai_usage_request_keys k ON k.usage_id = r.id
         WHERE m.role = 'assistant'
           AND (r.id IS NULL OR k.agent_message_id IS DISTINCT FROM m.id
                OR r.agent_session_id <> m.session_id OR r.created_at <> m.created_at
                OR r.user_id <> m.user_id OR r.model_id IS DISTINCT FROM m.model_id
                OR (r.input_tokens, r.output_tokens) <> (m.input_tokens, m.output_tokens)
                OR r.latency_ms IS DISTINCT FROM m.latency_ms)
        """
    )
    assert unlinked == []
    assert (
        _value(
            "SELECT count(*) FROM ai_usage_requests r JOIN agent_messages m"
            " ON m.id = r.agent_message_id WHERE m.role <> 'assistant'"
        )
        == 0
    )
    assert _value("SELECT count(*) FROM agent_messages WHERE role = 'assistant'") > 0


def test_costs_are_the_catalog_prices_applied_as_record_ai_usage_applies_them(seeded):
    wrong = _rows(
        """
        SELECT r.id FROM ai_usage_requests r JOIN ai_models m ON m.id = r.model_id
         WHERE m.provider_id <> r.provider_id
            OR (r.input_price_per_million, r.output_price_per_million,
                r.cached_input_price_per_million)
               <> (m.input_price_per_million, m.output_price_per_million,
                   m.cached_input_price_per_million)
            OR r.cost <> round(((r.input_tokens - r.cached_input_tokens)::numeric
                                * m.input_price_per_million
                                + r.cached_input_tokens::numeric
                                * m.cached_input_price_per_million
                                + r.output_tokens::numeric * m.output_price_per_million)
                               / 1000000, 6)
        """
    )
    assert wrong == []
    assert _value("SELECT count(*) FROM ai_usage_requests WHERE cost > 0") > 0


def test_every_reference_resolves(seeded):
    """What the foreign keys would have refused, had they been checked during the load."""
    with connection.cursor() as cursor:
        cursor.execute(reset.DANGLING_CHECKS, {"tables": _public_tables()})
        checks = cursor.fetchall()
        dangling = []
        for constraint, query in checks:
            cursor.execute(query)
            if cursor.fetchone()[0]:
                dangling.append(constraint)
    assert len(checks) > 20
    assert dangling == []


def _public_tables() -> list[str]:
    return [row[0] for row in _rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


def test_rows_stay_in_the_window_and_in_order(seeded, now):
    start = (now - timedelta(days=DAYS - 1)).replace(hour=0)
    assert _value(
        "SELECT min(created_at) >= %s AND max(created_at) <= %s FROM ai_usage_requests",
        [start, now],
    )
    wrong = _rows(
        """
        SELECT s.id FROM agent_sessions s
          LEFT JOIN agent_messages m ON m.session_id = s.id
         GROUP BY s.id
        HAVING min(m.created_at) < s.started_at
            OR bool_or(s.ended_at < s.last_activity_at)
            OR bool_or(s.is_active AND s.last_activity_at < %s - interval '24 hours')
            OR count(m.id) <> coalesce(max(m.position), 0)
        """,
        [now],
    )
    assert wrong == []
    # (The load's own audit event, demo_seeded, is written at the real current time.)
    future = {
        column: _value(
            f"SELECT count(*) FROM {column.split('.')[0]} WHERE {column} > %s"
            + (" AND event_type <> 'demo_seeded'" if column.startswith("audit_logs") else ""),
            [now],
        )
        for column in (
            "ai_usage_requests.created_at", "agent_messages.created_at",
            "agent_sessions.last_activity_at", "agent_sessions.ended_at",
            "agent_tool_calls.started_at", "agent_tool_calls.completed_at",
            "agent_feedback.created_at", "audit_logs.created_at", "payment_history.created_at",
            "access_tokens.created_at", "access_tokens.last_used_at", "usage_alerts.notified_at",
            "users.date_joined", "users.last_login",
        )
    }  # fmt: skip
    assert {column: count for column, count in future.items() if count} == {}
    late = _rows(
        "SELECT c.id FROM agent_tool_calls c JOIN agent_messages m ON m.id = c.message_id"
        " WHERE c.started_at < m.created_at OR c.completed_at < c.started_at"
        " OR c.duration_ms <> round(extract(epoch FROM c.completed_at - c.started_at) * 1000)"
    )
    assert late == []


# --- session counters: what the triggers compute ------------------------------------------------
REPLAY = """
CREATE TEMPORARY TABLE replay_sessions ON COMMIT DROP AS
    SELECT id AS original, nextval(pg_get_serial_sequence('agent_sessions', 'id')) AS copy
      FROM agent_sessions;
CREATE TEMPORARY TABLE replay_messages ON COMMIT DROP AS
    SELECT id AS original, nextval(pg_get_serial_sequence('agent_messages', 'id')) AS copy
      FROM agent_messages;
INSERT INTO agent_sessions (id, user_id, title, agent_name, model_id, is_active, started_at,
                            last_activity_at, ended_at, metadata)
SELECT rs.copy, s.user_id, s.title, s.agent_name, s.model_id, s.is_active, s.started_at,
       s.started_at, s.ended_at, s.metadata
  FROM agent_sessions s JOIN replay_sessions rs ON rs.original = s.id;
INSERT INTO agent_messages (id, session_id, user_id, role, content, position, input_tokens,
                            output_tokens, model_id, latency_ms, created_at, metadata)
SELECT rm.copy, rs.copy, m.user_id, m.role, m.content, m.position, m.input_tokens,
       m.output_tokens, m.model_id, m.latency_ms, m.created_at, m.metadata
  FROM agent_messages m
  JOIN replay_messages rm ON rm.original = m.id
  JOIN replay_sessions rs ON rs.original = m.session_id
 ORDER BY m.session_id, m.position;
INSERT INTO agent_tool_calls (session_id, message_id, user_id, tool_name, arguments, result,
                              status, error, started_at, completed_at, duration_ms)
SELECT rs.copy, rm.copy, c.user_id, c.tool_name, c.arguments, c.result, c.status, c.error,
       c.started_at, c.completed_at, c.duration_ms
  FROM agent_tool_calls c
  JOIN replay_sessions rs ON rs.original = c.session_id
  LEFT JOIN replay_messages rm ON rm.original = c.message_id;
WITH source AS MATERIALIZED (
    SELECT r.*, nextval('ai_usage_requests_id_seq') AS new_id, rs.copy AS new_session,
           rm.copy AS new_message
      FROM ai_usage_requests r
      JOIN replay_sessions rs ON rs.original = r.agent_session_id
      LEFT JOIN replay_messages rm ON rm.original = r.agent_message_id
), keys AS (
    INSERT INTO ai_usage_request_keys (usage_id, user_id, request_id, agent_message_id,
                                       created_at)
    SELECT new_id, user_id, 'replay-' || request_id, new_message, created_at FROM source
)
INSERT INTO ai_usage_requests (id, created_at, user_id, provider_id, model_id,
                               agent_session_id, agent_message_id, request_id, input_tokens,
                               output_tokens, cached_input_tokens, reasoning_tokens,
                               total_tokens, cost, input_price_per_million,
                               output_price_per_million, cached_input_price_per_million,
                               latency_ms, time_to_first_token_ms, status, error_code,
                               error_message, metadata)
SELECT new_id, created_at, user_id, provider_id, model_id, new_session, new_message,
       'replay-' || request_id, input_tokens, output_tokens, cached_input_tokens,
       reasoning_tokens, total_tokens, cost, input_price_per_million, output_price_per_million,
       cached_input_price_per_million, latency_ms, time_to_first_token_ms, status, error_code,
       error_message, metadata
  FROM source;
"""


def test_session_totals_equal_what_the_triggers_compute(seeded):
    """Every demo session is replayed row by row with the triggers on (a copy of the session,
    its messages, tool calls and usage rows): the triggers' counters must equal the loaded
    ones."""
    with connection.cursor() as cursor:
        cursor.execute(REPLAY)
    columns = (
        "message_count",
        "tool_call_count",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "total_cost",
        "last_activity_at",
    )
    pairs = _rows(
        f"""
        SELECT {", ".join(f"o.{c}" for c in columns)}, {", ".join(f"c.{c}" for c in columns)}
          FROM replay_sessions rs
          JOIN agent_sessions o ON o.id = rs.original
          JOIN agent_sessions c ON c.id = rs.copy
        """
    )
    assert len(pairs) == seeded.rows["agent_sessions"]
    width = len(columns)
    differing = [row for row in pairs if row[:width] != row[width:]]
    assert differing == []
    assert sum(row[0] for row in pairs) == seeded.rows["agent_messages"]
    assert sum(row[1] for row in pairs) == seeded.rows["agent_tool_calls"]
    assert any(row[2] > 0 for row in pairs)


# --- people and plans ----------------------------------------------------------------------------
def test_users_spread_over_the_plans(seeded):
    tiers = dict(
        _rows(
            "SELECT t.slug, count(*) FROM user_subscriptions s"
            " JOIN subscription_tiers t ON t.id = s.tier_id"
            " WHERE s.status IN ('trialing', 'active', 'past_due') GROUP BY t.slug"
        )
    )
    assert sum(tiers.values()) == USERS  # one current plan each
    assert tiers["free"] > tiers["pro"] >= tiers["team"] >= tiers["enterprise"] >= 1
    assert plan.tier_counts(1000) == {"enterprise": 2, "team": 60, "pro": 180, "free": 758}
    emails = [row[0] for row in _rows("SELECT email FROM users ORDER BY email")]
    assert emails == [f"demo-{n:05d}@example.com" for n in range(1, USERS + 1)]
    # Paid plans were paid for; the demo password signs in.
    unpaid = _value(
        "SELECT count(*) FROM user_subscriptions s"
        " JOIN subscription_tiers t ON t.id = s.tier_id WHERE t.monthly_price > 0"
        " AND NOT EXISTS (SELECT 1 FROM payment_history p WHERE p.subscription_id = s.id)"
    )
    assert unpaid == 0
    assert User.objects.get(email="demo-00001@example.com").check_password(plan.DEFAULT_PASSWORD)


def test_demo_tokens_hold_scopes_of_the_vocabulary_for_at_most_30_days(seeded):
    rows = _rows("SELECT scopes, expires_at - created_at FROM access_tokens")
    assert rows
    assert all(set(held) <= set(scopes.ALL) and held for held, _ in rows)
    assert max(lifetime for _, lifetime in rows) <= timedelta(days=30)


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(now):
    _seed(now)
    first = _fingerprint()
    _seed(now, reset_demo=True)
    assert _fingerprint() == first
    _seed(now, seed=plan.DEFAULT_SEED + 1, reset_demo=True)
    assert _fingerprint() != first


def _fingerprint() -> dict[str, str]:
    """Checksums of the content of every loaded table, ids left out (sequences move on)."""
    queries = {
        "users": "SELECT u.email, u.full_name, u.date_joined, u.email_verified_at, u.last_login,"
        " u.password FROM users u",
        "usage": "SELECT u.email, r.created_at, m.name, r.request_id, r.input_tokens,"
        " r.output_tokens, r.cached_input_tokens, r.reasoning_tokens, r.cost, r.latency_ms,"
        " r.time_to_first_token_ms, r.status, r.error_code, r.agent_session_id IS NULL"
        " FROM ai_usage_requests r JOIN users u ON u.id = r.user_id"
        " JOIN ai_models m ON m.id = r.model_id",
        "messages": "SELECT u.email, s.title, s.started_at, m.position, m.role, m.content,"
        " m.created_at FROM agent_messages m JOIN agent_sessions s ON s.id = m.session_id"
        " JOIN users u ON u.id = m.user_id",
        "tool_calls": "SELECT c.tool_name, c.arguments, c.result, c.status, c.started_at,"
        " c.duration_ms FROM agent_tool_calls c",
        "feedback": "SELECT f.rating, f.comment, f.category, f.created_at FROM agent_feedback f",
        "plans": "SELECT u.email, t.slug, s.status, s.current_period_start, s.current_period_end,"
        " s.provider_subscription_id FROM user_subscriptions s JOIN users u ON u.id = s.user_id"
        " JOIN subscription_tiers t ON t.id = s.tier_id",
        "payments": "SELECT p.amount, p.status, p.provider_payment_id, p.created_at"
        " FROM payment_history p",
        "alerts": "SELECT a.alert_type, a.metric, a.value_at_trigger, a.triggered_at"
        " FROM usage_alerts a",
        "audit": "SELECT a.event_type, a.created_at, a.ip, a.details - 'expires_at'"
        " FROM audit_logs a WHERE a.user_id IS NOT NULL",
        "tokens": "SELECT t.token_hash, t.prefix, t.created_at FROM access_tokens t",
    }
    return {
        name: _value(
            f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM ({query}) x"
        )
        for name, query in queries.items()
    }


# --- monthly reports -----------------------------------------------------------------------------
REPORT_DAYS = 40  # always reaches back into a month that has ended


def _report_totals() -> dict:
    """month -> (requests, tokens, cost) of each stored report's 'total' row."""
    rows = _rows(
        "SELECT make_date(year, month, 1), requests, tokens, cost FROM usage_monthly_reports"
        " WHERE dimension = 'total'"
    )
    return {month: figures for month, *figures in rows}


def _rollup_totals(month) -> list:
    """(requests, tokens, cost) of the month in the daily roll-up."""
    return list(
        _rows(
            "SELECT coalesce(sum(request_count), 0), coalesce(sum(total_tokens), 0),"
            " coalesce(sum(cost), 0) FROM ai_usage_daily"
            " WHERE usage_date >= %s AND usage_date < %s + interval '1 month'",
            [month, month],
        )[0]
    )


def test_every_ended_month_of_the_history_has_its_report_stored_as_operators_store_it(now):
    result, _ = _seed(now, days=REPORT_DAYS)
    months = reports.complete_months(plan.Window.ending(now, REPORT_DAYS))
    assert months and months[-1] == (now.replace(day=1) - timedelta(days=1)).date().replace(day=1)
    stored = _report_totals()
    # Every ended month of the window, and not the month that is still running.
    assert sorted(stored) == months
    for month in months:
        assert list(stored[month]) == _rollup_totals(month), month
        # What the operator's command would store now: nothing left to change.
        assert monthly_report_generate(month=month) == 0
    assert stored[months[-1]][0] > 0  # the demo used something last month
    assert result.rows[reports.TABLE] == _value("SELECT count(*) FROM usage_monthly_reports")


def test_the_report_page_shows_last_months_stored_report_after_the_load(now, client):
    _seed(now, days=REPORT_DAYS)
    staff = User.objects.create_user(
        email="staff@example.com", password="pw-1234567", is_staff=True
    )
    client.force_login(staff)
    page = client.get("/dashboard/reports/").content.decode()
    last = reports.complete_months(plan.Window.ending(now, REPORT_DAYS))[-1]
    assert f"{last:%Y-%m} (UTC) against" in page
    assert 'id="no-report"' not in page
    assert "Stored " in page


def test_reports_stored_before_a_reset_are_stored_again_from_the_new_data(now):
    _seed(now, days=REPORT_DAYS)
    earlier = _report_totals()
    # A shorter window: the reports of the first load's months no longer match the roll-ups
    # once its users are gone, unless they are generated again.
    _seed(now, days=2, reset_demo=True)
    stored = _report_totals()
    assert set(stored) >= set(earlier)
    for month in stored:
        assert list(stored[month]) == _rollup_totals(month), month
    assert any(stored[month] != earlier[month] for month in earlier)


# --- row-level security --------------------------------------------------------------------------
def test_a_demo_user_sees_only_their_own_rows(seeded):
    user_id = _value(
        "SELECT user_id FROM ai_usage_requests GROUP BY user_id ORDER BY count(*) DESC LIMIT 1"
    )
    user = User.objects.get(pk=user_id)
    own = {
        table: _value(f"SELECT count(*) FROM public.{table} WHERE user_id = %s", [user_id])
        for table in ("ai_usage_requests", "ai_usage_daily", "agent_sessions", "agent_messages")
    }
    assert all(own.values())
    with transaction.atomic(), rls.user_context(user):
        for table, count in own.items():
            seen = _rows(f"SELECT user_id, count(*) FROM public.{table} GROUP BY user_id")
            assert seen == [(user_id, count)], table


# --- refusals, reset, audit, the command -----------------------------------------------------
def test_refuses_a_database_with_other_users_unless_forced(now):
    UserFactory(email="someone@example.org")
    with pytest.raises(DemoError) as refused:
        _seed(now)
    assert str(refused.value) == OTHER_USERS.format(count=1)
    assert _value("SELECT count(*) FROM users") == 1
    result, _ = _seed(now, users=3, days=2, force=True)
    assert _value("SELECT count(*) FROM users") == 4
    assert result.rows["users"] == 3


def test_reset_replaces_earlier_demo_data_and_touches_nothing_else(now):
    other = UserFactory(email="someone@example.org")
    _seed(now, users=4, days=2, force=True)
    with pytest.raises(DemoError) as refused:
        _seed(now, users=4, days=2, force=True)
    assert str(refused.value) == DEMO_PRESENT.format(count=4)
    before = _value("SELECT count(*) FROM ai_usage_requests")
    result, _ = _seed(now, users=4, days=2, force=True, reset_demo=True)
    assert result.removed["users"] == 4
    assert result.removed["ai_usage_requests"] == before
    assert _value("SELECT count(*) FROM users") == 5
    assert _value("SELECT count(*) FROM users WHERE id = %s", [other.pk]) == 1
    assert _value("SELECT count(*) FROM ai_usage_requests") == result.rows["ai_usage_requests"]


def test_refuses_a_role_that_cannot_turn_triggers_off(now):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {rls.APP_ROLE}")
        with pytest.raises(DemoError) as refused:
            _seed(now)
        cursor.execute("RESET ROLE")
    assert str(refused.value) == NOT_PRIVILEGED.format(role=rls.APP_ROLE)


def test_the_load_is_audited_with_its_counts(seeded):
    event = AuditLog.objects.get(event_type=DEMO_SEEDED)
    assert event.user_id is None
    assert event.details["users"] == USERS
    assert event.details["rows"]["ai_usage_requests"] == seeded.rows["ai_usage_requests"]


def test_the_command_prints_counts_and_the_demo_password():
    out, err = StringIO(), StringIO()
    call_command(
        "seed_demo",
        "--users",
        "3",
        "--days",
        "2",
        "--password",
        "open sesame",
        stdout=out,
        stderr=err,
    )
    assert "ai_usage_requests" in out.getvalue()
    assert "demo-00001@example.com" in out.getvalue()
    assert "open sesame" in out.getvalue()
    assert "generating + COPY" in err.getvalue()
    assert "\r" not in err.getvalue()  # not a terminal: one line per phase
    assert AuditLog.objects.filter(event_type=DEMO_SEEDED).count() == 1


def test_the_command_refuses_in_one_line():
    UserFactory()
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo", "--users", "3", "--days", "2", stdout=StringIO())
    assert str(refused.value) == "seed_demo: " + OTHER_USERS.format(count=1)
    with pytest.raises(CommandError, match="users must be a whole number from 1 to 100,000"):
        call_command("seed_demo", "--users", "0", stdout=StringIO())


def test_windows_over_several_months_get_their_partitions(now):
    _seed(now, users=3, days=70)
    assert _value("SELECT count(*) FROM ai_usage_requests_default") == 0
    months = _value(
        "SELECT count(DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC'))"
        " FROM ai_usage_requests"
    )
    assert months >= 3
