"""The ten indexes the product names exist under those names and serve the queries they are for.

Each plan test loads a realistic amount of data set-wise (INSERT ... SELECT FROM generate_series),
runs ANALYZE (VACUUM ANALYZE for the two covering indexes of the daily roll-up, see there), then
asks EXPLAIN (FORMAT JSON) how PostgreSQL would run the query. No planner switch is touched: the
index must win on cost, given selective predicates and enough rows.
"""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from witchcraft.tests.schema.db import execute, fetchall
from witchcraft.tests.schema.plans import analyze, assert_uses

pytestmark = pytest.mark.django_db

# name -> (table, the definition after "USING ")
NAMED_INDEXES = {
    "idx_ai_usage_user_recent": ("ai_usage_requests", "btree (user_id, created_at DESC)"),
    "idx_agent_sessions_user_active": (
        "agent_sessions",
        "btree (user_id, last_activity_at DESC) WHERE is_active",
    ),
    "idx_quotas_approaching_limit": (
        "user_quotas",
        "btree (usage_ratio DESC) WHERE (usage_ratio >= 0.8)",
    ),
    "idx_access_tokens_token_hash": ("access_tokens", "btree (token_hash)"),
    "idx_access_tokens_expired": ("access_tokens", "btree (expires_at)"),
    "idx_ai_usage_provider_comparison": (
        "ai_usage_daily",
        "btree (usage_date, provider_id) INCLUDE (request_count, error_count, total_tokens, cost,"
        " latency_ms_sum, latency_count)",
    ),
    "idx_model_popularity": (
        "ai_usage_daily",
        "btree (usage_date, model_id) INCLUDE (request_count, total_tokens)",
    ),
    "idx_ai_usage_monthly_cost": (
        "ai_usage_monthly",
        "btree (year, month, cost DESC) INCLUDE (user_id, total_tokens, request_count)",
    ),
    "idx_audit_logs_failed_logins": (
        "audit_logs",
        "btree (user_id, created_at DESC) WHERE ((event_type)::text = 'login_failed'::text)",
    ),
    "idx_audit_logs_security": (
        "audit_logs",
        "btree (created_at DESC) WHERE ((severity)::text = ANY ((ARRAY['warning'::character"
        " varying, 'critical'::character varying])::text[]))",
    ),
}

# Seeded rows go round-robin to this many users: a prime, so that every user gets a share of
# every kind of row (each "1 in n" pattern below uses an n that is not a multiple of it).
USERS = 199


# --- seed data ----------------------------------------------------------------------------------


def _seed_users(count: int, prefix: str = "seed") -> list[int]:
    rows = fetchall(
        "INSERT INTO users (email, password, full_name, is_active, is_staff, is_superuser,"
        " date_joined)"
        " SELECT %s || g || '@example.com', '', '', true, false, false, now()"
        " FROM generate_series(1, %s) AS g ORDER BY g RETURNING id",
        [prefix, count],
    )
    return sorted(row[0] for row in rows)


def _catalog() -> list[tuple[int, int]]:
    """(model id, provider id) of every model of the catalog the migrations load."""
    return fetchall("SELECT id, provider_id FROM ai_models ORDER BY id")


# --- the names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("index", NAMED_INDEXES)
def test_the_index_exists_under_its_exact_name(index):
    table, definition = NAMED_INDEXES[index]
    rows = fetchall(
        "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s",
        [index],
    )
    assert len(rows) == 1, f"no index named {index}"
    found_table, indexdef = rows[0]
    assert found_table == table
    assert indexdef.split(" USING ", 1)[1] == definition


def test_the_unique_token_index_is_unique():
    rows = fetchall(
        "SELECT indisunique FROM pg_index"
        " WHERE indexrelid = 'idx_access_tokens_token_hash'::regclass"
    )
    assert rows == [(True,)]


def test_every_partition_of_ai_usage_requests_has_its_child_of_the_recent_index():
    partitions = fetchall(
        "SELECT inhrelid::regclass::text FROM pg_inherits"
        " WHERE inhparent = 'ai_usage_requests'::regclass"
    )
    children = fetchall(
        "SELECT i.indrelid::regclass::text FROM pg_inherits h JOIN pg_index i"
        " ON i.indexrelid = h.inhrelid WHERE h.inhparent = 'idx_ai_usage_user_recent'::regclass"
    )
    assert partitions
    assert sorted(children) == sorted(partitions)


# --- the queries they serve ---------------------------------------------------------------------


def test_a_users_recent_requests_use_idx_ai_usage_user_recent():
    users = _seed_users(USERS)
    model_id, provider_id = _catalog()[0]
    # 20,000 requests, one every 3 minutes over the last 6 weeks (this month's partition and
    # the previous one), about 100 per user; each key row first, then its usage row.
    execute(
        "INSERT INTO ai_usage_request_keys (usage_id, user_id, request_id, created_at)"
        " SELECT nextval('ai_usage_requests_id_seq'), (%s::bigint[])[1 + g %% %s],"
        "        'seed-' || g, now() - g * interval '3 minutes'"
        " FROM generate_series(1, 20000) AS g",
        [users, USERS],
    )
    execute(
        "INSERT INTO ai_usage_requests (id, created_at, user_id, provider_id, model_id,"
        " request_id, input_tokens, output_tokens, total_tokens, cost, latency_ms)"
        " SELECT usage_id, created_at, user_id, %s, %s, request_id, 1000, 500, 1500, 0.00125, 800"
        " FROM ai_usage_request_keys WHERE request_id LIKE 'seed-%%'",
        [provider_id, model_id],
    )
    analyze("ai_usage_request_keys", "ai_usage_requests")
    assert_uses(
        "idx_ai_usage_user_recent",
        "SELECT id, created_at, model_id, total_tokens, cost, status FROM ai_usage_requests"
        " WHERE user_id = %s ORDER BY created_at DESC LIMIT 20",
        [users[17]],
    )


def test_a_users_active_sessions_use_idx_agent_sessions_user_active():
    users = _seed_users(USERS)
    # 10,000 sessions, about 50 per user, over the last 200 days; the latest 1,000 (about 5 per
    # user) are still active.
    execute(
        "INSERT INTO agent_sessions (user_id, title, agent_name, is_active, started_at,"
        " last_activity_at, ended_at, message_count, tool_call_count, input_tokens,"
        " output_tokens, total_tokens, total_cost, metadata)"
        " SELECT (%s::bigint[])[1 + g %% %s], 'session ' || g, 'assistant', g <= 1000,"
        "        s.started, s.started + interval '20 minutes',"
        "        CASE WHEN g > 1000 THEN s.started + interval '20 minutes' END,"
        "        12, 3, 4000, 2000, 6000, 0.05, '{}'"
        " FROM generate_series(1, 10000) AS g"
        " CROSS JOIN LATERAL (SELECT now() - g * interval '29 minutes' AS started) AS s",
        [users, USERS],
    )
    analyze("agent_sessions")
    assert_uses(
        "idx_agent_sessions_user_active",
        "SELECT * FROM agent_sessions WHERE user_id = %s AND is_active = true"
        " ORDER BY last_activity_at DESC LIMIT 20",
        [users[42]],
    )


def test_quotas_approaching_their_limit_use_idx_quotas_approaching_limit():
    users = _seed_users(5000)
    # One quota per user; most well below 80 %, one in a hundred at 90 %.
    execute(
        "INSERT INTO user_quotas (user_id, tokens_limit, tokens_used, cost_limit, cost_used,"
        " period_start, period_end, updated_at)"
        " SELECT u.id, 1000000,"
        "        CASE WHEN u.n %% 100 = 0 THEN 900000 ELSE (u.n %% 70) * 10000 END,"
        "        10, (u.n %% 50) * 0.1, date_trunc('month', now()),"
        "        date_trunc('month', now()) + interval '1 month', now()"
        " FROM unnest(%s::bigint[]) WITH ORDINALITY AS u (id, n)",
        [users],
    )
    analyze("user_quotas")
    (above,) = fetchall("SELECT count(*) FROM user_quotas WHERE usage_ratio >= 0.8")[0]
    assert above == 50
    assert_uses(
        "idx_quotas_approaching_limit",
        "SELECT user_id, usage_ratio FROM user_quotas WHERE usage_ratio >= 0.8"
        " ORDER BY usage_ratio DESC",
    )


def _seed_access_tokens() -> None:
    users = _seed_users(USERS)
    # 10,000 tokens; one in two hundred has expired.
    execute(
        "INSERT INTO access_tokens (user_id, name, token_hash, prefix, scopes, created_at,"
        " expires_at)"
        " SELECT (%s::bigint[])[1 + g %% %s], 'token ' || g,"
        "        encode(sha256(g::text::bytea), 'hex'), 'wc_' || g, '{}', t.created,"
        "        CASE WHEN g %% 200 = 0 THEN now() - interval '1 day'"
        "             ELSE now() + interval '90 days' - g * interval '1 minute' END"
        " FROM generate_series(1, 10000) AS g"
        " CROSS JOIN LATERAL (SELECT now() - interval '30 days' - g * interval '1 minute'"
        "                     AS created) AS t",
        [users, USERS],
    )
    analyze("access_tokens")


def test_token_validation_uses_idx_access_tokens_token_hash():
    _seed_access_tokens()
    assert_uses(
        "idx_access_tokens_token_hash",
        "SELECT * FROM access_tokens WHERE token_hash = %s",
        [hashlib.sha256(b"4321").hexdigest()],
    )


def test_the_expired_token_sweep_uses_idx_access_tokens_expired():
    _seed_access_tokens()
    assert_uses(
        "idx_access_tokens_expired", "SELECT id FROM access_tokens WHERE expires_at < now()"
    )


def _seed_daily_usage() -> None:
    """Two years of the daily roll-up: 2,000 users, each active one day in 80 (18,250 rows)."""
    users = _seed_users(2000)
    catalog = _catalog()
    execute(
        "INSERT INTO ai_usage_daily (user_id, usage_date, provider_id, model_id, request_count,"
        " success_count, error_count, input_tokens, output_tokens, cached_input_tokens,"
        " reasoning_tokens, total_tokens, cost, latency_ms_sum, latency_count, updated_at)"
        " SELECT u.id, current_date - d, (%s::int[])[m.i], (%s::int[])[m.i],"
        "        40, 38, 2, 30000, 10000, 0, 0, 40000, 0.12, 32000, 40, now()"
        " FROM generate_series(729, 0, -1) AS d"
        " CROSS JOIN unnest(%s::bigint[]) WITH ORDINALITY AS u (id, n)"
        " CROSS JOIN LATERAL (SELECT 1 + (u.n + d) %% %s AS i) AS m"
        " WHERE (u.n + d * 7) %% 80 = 0",
        [[p for _, p in catalog], [m for m, _ in catalog], users, len(catalog)],
    )


PROVIDER_COMPARISON = (
    "SELECT provider_id, sum(request_count), sum(error_count), sum(total_tokens), sum(cost),"
    " sum(latency_ms_sum) / nullif(sum(latency_count), 0)"
    " FROM ai_usage_daily WHERE usage_date >= %s GROUP BY provider_id"
)
MODEL_POPULARITY = (
    "SELECT model_id, sum(request_count), sum(total_tokens) FROM ai_usage_daily"
    " WHERE usage_date >= %s GROUP BY model_id ORDER BY 2 DESC"
)


def _last_week():
    return datetime.now(UTC).date() - timedelta(days=7)


# Both roll-up indexes lead with usage_date, so for a date range either can find the rows; what
# sets each apart is that it covers its query. A covering index pays off as an index-only scan,
# which needs the visibility map that (auto)vacuum keeps, and VACUUM needs committed rows outside
# a transaction block: hence a transactional test (the catalog the migrations load is restored
# for it by serialized_rollback, and every table flushed after it).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    ("index", "query"),
    [
        ("idx_ai_usage_provider_comparison", PROVIDER_COMPARISON),
        ("idx_model_popularity", MODEL_POPULARITY),
    ],
)
def test_daily_rollup_reports_use_their_covering_index(index, query):
    _seed_daily_usage()
    execute("VACUUM (ANALYZE) ai_usage_daily")
    assert_uses(index, query, [_last_week()])


def test_the_biggest_spenders_of_a_month_use_idx_ai_usage_monthly_cost():
    users = _seed_users(500)
    # 36 months for each of 500 users: 18,000 rows.
    execute(
        "INSERT INTO ai_usage_monthly (user_id, year, month, request_count, success_count,"
        " error_count, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,"
        " total_tokens, cost, latency_ms_sum, latency_count, updated_at)"
        " SELECT u.id, 2024 + m / 12, 1 + m %% 12, 900, 880, 20, 600000, 200000, 0, 0, 800000,"
        "        (u.n * 37 + m * 11) %% 1000 * 0.25, 720000, 900, now()"
        " FROM generate_series(0, 35) AS m"
        " CROSS JOIN unnest(%s::bigint[]) WITH ORDINALITY AS u (id, n)",
        [users],
    )
    analyze("ai_usage_monthly")
    assert_uses(
        "idx_ai_usage_monthly_cost",
        "SELECT user_id, cost FROM ai_usage_monthly WHERE year = %s AND month = %s"
        " ORDER BY cost DESC LIMIT 10",
        [2025, 6],
    )


def _seed_audit_logs() -> list[int]:
    """20,000 events of 199 users over ~55 days: mostly info, 1 in 20 a failed sign-in,
    1 in 50 a warning and 1 in 500 critical."""
    users = _seed_users(USERS)
    execute(
        "INSERT INTO audit_logs (user_id, created_at, event_type, severity, user_agent,"
        " request_id, target_type, target_id, details)"
        " SELECT (%s::bigint[])[1 + g %% %s], now() - g * interval '4 minutes',"
        "        CASE WHEN g %% 20 = 0 THEN 'login_failed' ELSE 'login_succeeded' END,"
        "        CASE WHEN g %% 500 = 0 THEN 'critical' WHEN g %% 50 = 0 THEN 'warning'"
        "             ELSE 'info' END,"
        "        'Mozilla/5.0', 'req-' || g, '', '', '{}'"
        " FROM generate_series(1, 20000) AS g",
        [users, USERS],
    )
    analyze("audit_logs")
    return users


LOCKOUT_CHECK = (
    "SELECT count(*) FROM audit_logs WHERE user_id = %s AND event_type = 'login_failed'"
    " AND created_at > now() - interval '15 minutes'"
)


def test_the_lockout_check_uses_idx_audit_logs_failed_logins():
    users = _seed_audit_logs()
    target = users[20]
    # Someone is guessing this user's password right now.
    execute(
        "INSERT INTO audit_logs (user_id, created_at, event_type, severity, user_agent,"
        " request_id, target_type, target_id, details)"
        " SELECT %s, now() - g * interval '2 minutes', 'login_failed', 'info', 'curl/8.0',"
        "        'attack-' || g, '', '', '{}'"
        " FROM generate_series(1, 4) AS g",
        [target],
    )
    analyze("audit_logs")
    assert fetchall(LOCKOUT_CHECK, [target]) == [(4,)]
    assert_uses("idx_audit_logs_failed_logins", LOCKOUT_CHECK, [target])


def test_recent_security_events_use_idx_audit_logs_security():
    _seed_audit_logs()
    assert_uses(
        "idx_audit_logs_security",
        "SELECT * FROM audit_logs WHERE severity IN ('warning', 'critical')"
        " AND created_at > now() - interval '24 hours' ORDER BY created_at DESC LIMIT 50",
    )
