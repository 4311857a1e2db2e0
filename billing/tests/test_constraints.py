"""The database itself refuses bad rows, whoever writes them (all four apps' tables).

Every bad row is written with raw SQL, around Django, and must be refused with an error that
names the constraint. Each one is a valid row of its table (see VALID_ROWS, each accepted on its
own) with one thing wrong, so the named constraint is the only one it breaks.
"""

import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from accounts.models import AccessToken, UserProfile
from agents.models import AgentFeedback
from billing.models import PaymentHistory, SubscriptionTier, UsageAlert, UserSubscription
from usage.models import AIUsageDaily, AIUsageMonthly, AIUsageRequestKey
from witchcraft.testing.factories import (
    AgentMessageFactory,
    AgentSessionFactory,
    AuditLogFactory,
    UserFactory,
    quota_for,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
LATER = T0 + timedelta(days=30)
EARLIER = T0 - timedelta(days=1)
PERIOD = datetime(2026, 3, 1, tzinfo=UTC)
DAY = date(2026, 3, 14)


def _user():
    # No password: hashing one costs a good part of a second, and no test here signs in.
    return UserFactory(password=None)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Ref(str):
    """A value taken from the ``world`` fixture: the id (or email, ...) of an object it made."""


# --- the tables ---------------------------------------------------------------------------------

TABLES = {
    # accounts
    "users": "r",
    "user_profiles": "r",
    "access_tokens": "r",
    "password_reset_tokens": "r",
    "email_verification_tokens": "r",
    "audit_logs": "r",
    # usage
    "ai_providers": "r",
    "ai_models": "r",
    "ai_usage_requests": "p",  # partitioned by month
    "ai_usage_daily": "r",
    "ai_usage_monthly": "r",
    # agents
    "agent_sessions": "r",
    "agent_messages": "r",
    "agent_tool_calls": "r",
    "agent_feedback": "r",
    "agent_session_stats": "m",  # materialized view
    # billing
    "subscription_tiers": "r",
    "user_subscriptions": "r",
    "user_quotas": "r",
    "payment_history": "r",
    "usage_alerts": "r",
}


def _fetchall(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.mark.parametrize(("table", "kind"), TABLES.items())
def test_every_table_exists_under_its_name(table, kind):
    rows = _fetchall(
        "SELECT relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = %s",
        [table],
    )
    assert rows == [(kind,)], f"{table}: expected relkind {kind!r}, found {rows}"


def test_agent_session_stats_is_a_materialized_view():
    assert _fetchall(
        "SELECT ispopulated FROM pg_matviews WHERE matviewname = 'agent_session_stats'"
    )


# --- a valid row of every table -----------------------------------------------------------------

VALID_ROWS = {
    "users": {
        "email": "carol@example.com",
        "password": "",
        "full_name": "Carol",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
        "date_joined": T0,
    },
    "user_profiles": {
        "user_id": Ref("user"),
        "display_name": "Ann",
        "avatar_url": "",
        "company": "",
        "timezone": "UTC",
        "locale": "en",
        "preferences": '{"theme": "dark"}',
        "created_at": T0,
        "updated_at": T0,
    },
    "access_tokens": {
        "user_id": Ref("user"),
        "name": "laptop",
        "token_hash": sha256("a new token"),
        "prefix": "wc_3f9a",
        "scopes": ["usage:read"],
        "created_at": T0,
        "expires_at": LATER,
    },
    "password_reset_tokens": {
        "user_id": Ref("user"),
        "token_hash": sha256("a reset token"),
        "created_at": T0,
        "expires_at": T0 + timedelta(hours=1),
    },
    "email_verification_tokens": {
        "user_id": Ref("user"),
        "email": "ann@example.org",
        "token_hash": sha256("a verification token"),
        "created_at": T0,
        "expires_at": T0 + timedelta(days=2),
    },
    "audit_logs": {
        "user_id": Ref("user"),
        "created_at": T0,
        "event_type": "login_failed",
        "severity": "warning",
        "user_agent": "curl/8.0",
        "request_id": "",
        "target_type": "",
        "target_id": "",
        "details": '{"reason": "bad password"}',
    },
    "ai_providers": {
        "slug": "acme",
        "name": "Acme AI",
        "base_url": "",
        "is_local": False,
        "is_active": True,
        "created_at": T0,
    },
    "ai_models": {
        "provider_id": Ref("provider"),
        "name": "acme-1",
        "display_name": "Acme 1",
        "context_window": 8192,
        "input_price_per_million": Decimal("1.00"),
        "output_price_per_million": Decimal("2.00"),
        "cached_input_price_per_million": Decimal("0.10"),
        "is_active": True,
        "created_at": T0,
    },
    "ai_usage_request_keys": {
        "usage_id": Ref("free_usage_id"),
        "user_id": Ref("user"),
        "request_id": "req-new",
        "created_at": T0,
    },
    # Its key row is made by the world fixture.
    "ai_usage_requests": {
        "id": Ref("keyed_usage_id"),
        "created_at": T0,
        "user_id": Ref("user"),
        "provider_id": Ref("provider"),
        "model_id": Ref("model"),
        "request_id": "req-keyed",
        "input_tokens": 1000,
        "output_tokens": 500,
        "cached_input_tokens": 200,
        "reasoning_tokens": 100,
        "total_tokens": 1500,
        "cost": Decimal("0.001250"),
        "input_price_per_million": Decimal("0.25"),
        "output_price_per_million": Decimal("2.00"),
        "cached_input_price_per_million": Decimal("0.025"),
        "latency_ms": 800,
        "time_to_first_token_ms": 120,
        "status": "success",
        "error_code": "",
        "error_message": "",
        "metadata": "{}",
    },
    "ai_usage_daily": {
        "user_id": Ref("user"),
        "usage_date": DAY - timedelta(days=1),
        "provider_id": Ref("provider"),
        "model_id": Ref("model"),
        "request_count": 10,
        "success_count": 9,
        "error_count": 1,
        "input_tokens": 8000,
        "output_tokens": 2000,
        "cached_input_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 10000,
        "cost": Decimal("0.006"),
        "latency_ms_sum": 9000,
        "latency_count": 10,
        "updated_at": T0,
    },
    "ai_usage_monthly": {
        "user_id": Ref("user"),
        "year": 2026,
        "month": 2,
        "request_count": 300,
        "success_count": 290,
        "error_count": 10,
        "input_tokens": 240000,
        "output_tokens": 60000,
        "cached_input_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 300000,
        "cost": Decimal("0.18"),
        "latency_ms_sum": 270000,
        "latency_count": 300,
        "updated_at": T0,
    },
    "agent_sessions": {
        "user_id": Ref("user"),
        "title": "Trip planning",
        "agent_name": "assistant",
        "is_active": True,
        "started_at": T0,
        "last_activity_at": T0 + timedelta(minutes=5),
        "ended_at": None,
        "message_count": 2,
        "tool_call_count": 0,
        "input_tokens": 100,
        "output_tokens": 50,
        "total_tokens": 150,
        "total_cost": Decimal("0.0001"),
        "metadata": "{}",
    },
    "agent_messages": {
        "session_id": Ref("session"),
        "user_id": Ref("user"),
        "role": "assistant",
        "content": "Hello! How can I help?",
        "position": 2,
        "input_tokens": 10,
        "output_tokens": 8,
        "latency_ms": 640,
        "created_at": T0,
        "metadata": "{}",
    },
    "agent_tool_calls": {
        "session_id": Ref("session"),
        "message_id": Ref("message"),
        "user_id": Ref("user"),
        "tool_name": "web_search",
        "arguments": '{"q": "weather"}',
        "status": "success",
        "error": "",
        "started_at": T0,
        "completed_at": T0 + timedelta(seconds=2),
        "duration_ms": 2000,
    },
    # The world's user already rated the message and the session: this is another user.
    "agent_feedback": {
        "session_id": Ref("session"),
        "message_id": Ref("message"),
        "user_id": Ref("other_user"),
        "rating": 4,
        "comment": "",
        "category": "",
        "created_at": T0,
    },
    "subscription_tiers": {
        "slug": "startup",
        "name": "Startup",
        "description": "",
        "monthly_price": Decimal("12.00"),
        "yearly_price": Decimal("120.00"),
        "currency": "USD",
        "monthly_token_limit": 5_000_000,
        "monthly_cost_limit": Decimal("10.00"),
        "requests_per_minute": 60,
        "features": '{"agents": true}',
        "is_public": True,
        "is_active": True,
        "sort_order": 5,
        "created_at": T0,
        "updated_at": T0,
    },
    # The world's user has an active subscription: this is for the other user.
    "user_subscriptions": {
        "user_id": Ref("other_user"),
        "tier_id": Ref("tier"),
        "status": "active",
        "billing_cycle": "monthly",
        "current_period_start": T0,
        "current_period_end": LATER,
        "cancel_at_period_end": False,
        "payment_provider": "stripe",
        "provider_customer_id": "cus_2",
        "provider_subscription_id": "sub_2",
        "created_at": T0,
        "updated_at": T0,
    },
    # The world's user has a quota: this is the other user's.
    "user_quotas": {
        "user_id": Ref("other_user"),
        "tokens_limit": 1_000_000,
        "tokens_used": 0,
        "cost_limit": Decimal("5.00"),
        "cost_used": Decimal("0"),
        "period_start": PERIOD,
        "period_end": datetime(2026, 4, 1, tzinfo=UTC),
        "updated_at": T0,
    },
    "payment_history": {
        "user_id": Ref("user"),
        "subscription_id": Ref("subscription"),
        "amount": Decimal("12.00"),
        "currency": "USD",
        "status": "succeeded",
        "description": "Pro, March",
        "payment_provider": "stripe",
        "provider_payment_id": "pi_new",
        "period_start": PERIOD,
        "period_end": datetime(2026, 4, 1, tzinfo=UTC),
        "created_at": T0,
    },
    # The world's user has a (warning, tokens) alert this period: this one is about cost.
    "usage_alerts": {
        "user_id": Ref("user"),
        "alert_type": "warning",
        "metric": "cost",
        "threshold_percent": 80,
        "period_start": PERIOD,
        "value_at_trigger": Decimal("4.10"),
        "limit_at_trigger": Decimal("5.00"),
        "triggered_at": T0,
    },
}


@pytest.fixture
def world(catalog_model):
    """The rows the bad rows clash with or point at."""
    user = _user()
    other_user = _user()
    UserProfile.objects.create(user=other_user)
    session = AgentSessionFactory(user=user)
    message = AgentMessageFactory(session=session, role="user", position=1)
    AgentFeedback.objects.create(session=session, message=message, user=user, rating=5)
    AgentFeedback.objects.create(session=session, message=None, user=user, rating=4)
    tier = SubscriptionTier.objects.get(slug="pro")
    subscription = UserSubscription.objects.create(
        user=user,
        tier=tier,
        status="active",
        current_period_start=PERIOD,
        current_period_end=datetime(2026, 4, 1, tzinfo=UTC),
        payment_provider="stripe",
        provider_subscription_id="sub_1",
    )
    # An old subscription from before the payment provider kept references.
    UserSubscription.objects.create(
        user=user,
        tier=tier,
        status="canceled",
        current_period_start=datetime(2025, 1, 1, tzinfo=UTC),
        current_period_end=datetime(2025, 2, 1, tzinfo=UTC),
    )
    quota_for(user, "pro")
    PaymentHistory.objects.create(
        user=user,
        subscription=subscription,
        amount=Decimal("12.00"),
        status="succeeded",
        payment_provider="stripe",
        provider_payment_id="pi_existing",
    )
    UsageAlert.objects.create(
        user=user,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=PERIOD,
        value_at_trigger=800_000,
        limit_at_trigger=1_000_000,
    )
    AccessToken.objects.create(
        user=user,
        name="phone",
        token_hash=sha256("an existing token"),
        prefix="wc_0000",
        created_at=T0,
        expires_at=LATER,
    )
    counters = {"provider": catalog_model.provider, "model": catalog_model, "user": user}
    AIUsageDaily.objects.create(usage_date=DAY, **counters)
    AIUsageMonthly.objects.create(user=user, year=2026, month=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval('ai_usage_requests_id_seq'), nextval('ai_usage_requests_id_seq')"
        )
        keyed_usage_id, free_usage_id = cursor.fetchone()
    AIUsageRequestKey.objects.create(
        usage_id=keyed_usage_id, user=user, request_id="req-keyed", created_at=T0
    )
    return {
        "user": user.id,
        "user_email": user.email,
        "other_user": other_user.id,
        "provider": catalog_model.provider_id,
        "provider_slug": catalog_model.provider.slug,
        "model": catalog_model.id,
        "model_name": catalog_model.name,
        "session": session.id,
        "message": message.id,
        "tier": tier.id,
        "subscription": subscription.id,
        "keyed_usage_id": keyed_usage_id,
        "free_usage_id": free_usage_id,
    }


def _insert(world: dict, table: str, overrides: dict | None = None) -> None:
    row = {**VALID_ROWS[table], **(overrides or {})}
    values = {col: world[v] if isinstance(v, Ref) else v for col, v in row.items()}
    columns = ", ".join(f'"{col}"' for col in values)
    placeholders = ", ".join(f"%({col})s" for col in values)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", values)


@pytest.mark.parametrize("table", VALID_ROWS)
def test_a_valid_row_is_accepted(world, table):
    with transaction.atomic():
        _insert(world, table)


ALLOWED = [
    pytest.param(
        "user_subscriptions",
        {"user_id": Ref("user"), "status": status, "provider_subscription_id": f"sub_{status}"},
        id=f"a {status} subscription beside the current one",
    )
    for status in ("canceled", "expired")
] + [
    pytest.param(
        "user_subscriptions",
        {"provider_subscription_id": ""},
        id="two subscriptions without a provider reference",
    ),
    pytest.param(
        "agent_feedback",
        {"user_id": Ref("other_user"), "message_id": None},
        id="another user's feedback on the same session",
    ),
    pytest.param(
        "ai_usage_request_keys",
        {"user_id": Ref("other_user"), "request_id": "req-keyed"},
        id="the same request id for another user",
    ),
    pytest.param(
        "usage_alerts",
        {"alert_type": "exceeded", "metric": "tokens", "threshold_percent": 100},
        id="an exceeded alert after the warning of the same metric",
    ),
    pytest.param(
        "agent_sessions",
        {"is_active": False, "ended_at": T0 + timedelta(minutes=5)},
        id="an ended session",
    ),
    pytest.param(
        "user_quotas",
        {"tokens_limit": 0, "cost_limit": Decimal(0)},
        id="a quota with no limits",
    ),
    pytest.param(
        "payment_history",
        {"provider_payment_id": "pi_refund", "status": "refunded", "period_start": None},
        id="a payment without a period",
    ),
]


@pytest.mark.parametrize(("table", "overrides"), ALLOWED)
def test_rows_that_look_alike_but_are_fine_are_accepted(world, table, overrides):
    with transaction.atomic():
        _insert(world, table, overrides)


# --- bad rows -----------------------------------------------------------------------------------


def bad(description: str, table: str, overrides: dict, constraint: str):
    return pytest.param(table, overrides, constraint, id=description)


NOT_OBJECTS = {"an array": "[]", "a string": '"text"', "a number": "42", "JSON null": "null"}

BAD_ROWS = [
    # accounts: users
    bad("mixed-case email", "users", {"email": "Carol@Example.com"}, "users_email_normalized"),
    bad("email with spaces", "users", {"email": " carol@example.com"}, "users_email_normalized"),
    bad("duplicate email", "users", {"email": Ref("user_email")}, "users_email_key"),
    # accounts: user_profiles
    *[
        bad(
            f"preferences {kind}",
            "user_profiles",
            {"preferences": value},
            "user_profiles_preferences_object",
        )
        for kind, value in NOT_OBJECTS.items()
    ],
    bad("second profile", "user_profiles", {"user_id": Ref("other_user")}, "user_profiles_pkey"),
    # accounts: tokens
    *[
        bad(f"{table} {what}", table, {"token_hash": value}, f"{table}_token_hash_sha256")
        for table in ("access_tokens", "password_reset_tokens", "email_verification_tokens")
        for what, value in (
            ("raw token", "wc_live_abcdef"),
            ("upper-case digest", sha256("x").upper()),
            ("short digest", sha256("x")[:63]),
            ("non-hex digest", "g" * 64),
        )
    ],
    bad(
        "token expiring before it is made",
        "access_tokens",
        {"expires_at": EARLIER},
        "access_tokens_expiry_after_creation",
    ),
    bad(
        "token expiring as it is made",
        "access_tokens",
        {"expires_at": T0},
        "access_tokens_expiry_after_creation",
    ),
    bad("token without a name", "access_tokens", {"name": ""}, "access_tokens_name_not_empty"),
    bad(
        "duplicate token hash",
        "access_tokens",
        {"token_hash": sha256("an existing token")},
        "idx_access_tokens_token_hash",
    ),
    bad(
        "reset token expiring before it is made",
        "password_reset_tokens",
        {"expires_at": EARLIER},
        "password_reset_tokens_expiry",
    ),
    bad(
        "verification token expiring before it is made",
        "email_verification_tokens",
        {"expires_at": EARLIER},
        "email_verification_tokens_expiry",
    ),
    # accounts: audit_logs
    bad("audit severity 'error'", "audit_logs", {"severity": "error"}, "audit_logs_severity_valid"),
    bad(
        "audit severity upper-case",
        "audit_logs",
        {"severity": "WARNING"},
        "audit_logs_severity_valid",
    ),
    bad(
        "audit without event type",
        "audit_logs",
        {"event_type": ""},
        "audit_logs_event_type_not_empty",
    ),
    *[
        bad(f"audit details {kind}", "audit_logs", {"details": value}, "audit_logs_details_object")
        for kind, value in NOT_OBJECTS.items()
    ],
    # usage: catalog
    bad(
        "duplicate provider slug",
        "ai_providers",
        {"slug": Ref("provider_slug")},
        "ai_providers_slug_key",
    ),
    bad(
        "duplicate model of a provider",
        "ai_models",
        {"name": Ref("model_name")},
        "ai_models_provider_name_key",
    ),
    # Two CHECKs say the same here (PositiveIntegerField adds ai_models_context_window_check);
    # PostgreSQL tests CHECKs in name order, so that one reports it.
    bad(
        "negative context window",
        "ai_models",
        {"context_window": -1},
        "ai_models_context_window_(check|non_negative)",
    ),
    *[
        bad(
            f"negative model {col}",
            "ai_models",
            {col: Decimal("-0.01")},
            f"ai_models_{col}_non_negative",
        )
        for col in (
            "input_price_per_million",
            "output_price_per_million",
            "cached_input_price_per_million",
        )
    ],
    # usage: ai_usage_request_keys
    bad(
        "retried request id",
        "ai_usage_request_keys",
        {"request_id": "req-keyed"},
        "ai_usage_request_keys_user_request_key",
    ),
    bad(
        "key without request id",
        "ai_usage_request_keys",
        {"request_id": ""},
        "ai_usage_request_keys_request_id_not_empty",
    ),
    # usage: ai_usage_requests
    bad(
        "usage status 'ok'", "ai_usage_requests", {"status": "ok"}, "ai_usage_requests_status_valid"
    ),
    bad(
        "negative input tokens",
        "ai_usage_requests",
        {"input_tokens": -1, "cached_input_tokens": -1, "total_tokens": 499},
        "ai_usage_requests_tokens_non_negative",
    ),
    bad(
        "total tokens not the sum",
        "ai_usage_requests",
        {"total_tokens": 1600},
        "ai_usage_requests_total_tokens",
    ),
    bad(
        "more cached tokens than input",
        "ai_usage_requests",
        {"cached_input_tokens": 1001},
        "ai_usage_requests_cached_within_input",
    ),
    bad(
        "more reasoning tokens than output",
        "ai_usage_requests",
        {"reasoning_tokens": 501},
        "ai_usage_requests_reasoning_within_output",
    ),
    bad(
        "negative cost",
        "ai_usage_requests",
        {"cost": Decimal("-0.000001")},
        "ai_usage_requests_money_non_negative",
    ),
    bad(
        "negative latency",
        "ai_usage_requests",
        {"latency_ms": -5},
        "ai_usage_requests_latency_non_negative",
    ),
    bad(
        "usage metadata an array",
        "ai_usage_requests",
        {"metadata": "[]"},
        "ai_usage_requests_metadata_object",
    ),
    bad(
        "usage row without its key row",
        "ai_usage_requests",
        {"request_id": "req-unkeyed"},
        "ai_usage_requests_key_fk",
    ),
    bad(
        "usage row at another time than its key",
        "ai_usage_requests",
        {"created_at": T0 + timedelta(seconds=1)},
        "ai_usage_requests_key_fk",
    ),
    bad(
        "usage row claiming a message its key lacks",
        "ai_usage_requests",
        {"agent_message_id": Ref("message")},
        "ai_usage_requests_message_fk",
    ),
    # usage: roll-ups
    *[
        bad(
            f"{table}: request count {counts}",
            table,
            dict(zip(("request_count", "success_count", "error_count"), counts, strict=True)),
            f"{table}_outcomes_add_up",
        )
        for table in ("ai_usage_daily", "ai_usage_monthly")
        for counts in ((10, 9, 0), (10, 10, 1))
    ],
    *[
        bad(f"{table}: negative {col}", table, {col: -1}, f"{table}_{col}_non_negative")
        for table in ("ai_usage_daily", "ai_usage_monthly")
        for col in ("input_tokens", "total_tokens", "latency_count")
    ],
    bad(
        "daily: negative cost",
        "ai_usage_daily",
        {"cost": Decimal("-1")},
        "ai_usage_daily_cost_non_negative",
    ),
    bad(
        "daily: negative error count that adds up",
        "ai_usage_daily",
        {"request_count": 9, "success_count": 10, "error_count": -1},
        "ai_usage_daily_error_count_non_negative",
    ),
    bad(
        "daily: second row of a user, day and model",
        "ai_usage_daily",
        {"usage_date": DAY},
        "ai_usage_daily_key",
    ),
    bad("monthly: month 13", "ai_usage_monthly", {"month": 13}, "ai_usage_monthly_month_valid"),
    bad("monthly: month 0", "ai_usage_monthly", {"month": 0}, "ai_usage_monthly_month_valid"),
    bad("monthly: year 1999", "ai_usage_monthly", {"year": 1999}, "ai_usage_monthly_year_valid"),
    bad(
        "monthly: second row of a user and month",
        "ai_usage_monthly",
        {"month": 1},
        "ai_usage_monthly_key",
    ),
    # agents: sessions
    *[
        bad(
            f"session: negative {col}",
            "agent_sessions",
            {col: -1},
            f"agent_sessions_{col}_non_negative",
        )
        for col in (
            "message_count",
            "tool_call_count",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "total_cost",
        )
    ],
    bad(
        "session active after it ended",
        "agent_sessions",
        {"ended_at": T0 + timedelta(hours=1)},
        "agent_sessions_active_not_ended",
    ),
    bad(
        "session ending before it started",
        "agent_sessions",
        {"is_active": False, "ended_at": EARLIER, "last_activity_at": T0},
        "agent_sessions_end_after_start",
    ),
    bad(
        "session activity before it started",
        "agent_sessions",
        {"last_activity_at": EARLIER},
        "agent_sessions_activity_after_start",
    ),
    *[
        bad(
            f"session metadata {kind}",
            "agent_sessions",
            {"metadata": value},
            "agent_sessions_metadata_object",
        )
        for kind, value in NOT_OBJECTS.items()
    ],
    # agents: messages
    bad(
        "two messages at one position",
        "agent_messages",
        {"position": 1},
        "agent_messages_session_position_key",
    ),
    bad("message role 'bot'", "agent_messages", {"role": "bot"}, "agent_messages_role_valid"),
    # (0, like NULL, asks the agent_messages_position trigger for the next free position.)
    bad(
        "message at a negative position",
        "agent_messages",
        {"position": -1},
        "agent_messages_position_positive",
    ),
    *[
        bad(
            f"message: negative {col}",
            "agent_messages",
            {col: -1},
            f"agent_messages_{col}_non_negative",
        )
        for col in ("input_tokens", "output_tokens", "latency_ms")
    ],
    bad(
        "message metadata an array",
        "agent_messages",
        {"metadata": "[]"},
        "agent_messages_metadata_object",
    ),
    # agents: tool calls
    bad(
        "tool call status 'done'",
        "agent_tool_calls",
        {"status": "done"},
        "agent_tool_calls_status_valid",
    ),
    bad(
        "tool call negative duration",
        "agent_tool_calls",
        {"duration_ms": -1},
        "agent_tool_calls_duration_ms_non_negative",
    ),
    bad(
        "tool call completed before it started",
        "agent_tool_calls",
        {"completed_at": EARLIER},
        "agent_tool_calls_completed_after_start",
    ),
    bad(
        "tool call without a tool",
        "agent_tool_calls",
        {"tool_name": ""},
        "agent_tool_calls_tool_name",
    ),
    # agents: feedback
    bad(
        "second feedback on a message",
        "agent_feedback",
        {"user_id": Ref("user")},
        "agent_feedback_user_message_key",
    ),
    bad(
        "second feedback on a session",
        "agent_feedback",
        {"user_id": Ref("user"), "message_id": None},
        "agent_feedback_user_session_key",
    ),
    bad("rating 0", "agent_feedback", {"rating": 0}, "agent_feedback_rating_range"),
    bad("rating 6", "agent_feedback", {"rating": 6}, "agent_feedback_rating_range"),
    # billing: tiers
    *[
        bad(
            f"tier: negative {col}",
            "subscription_tiers",
            {col: -1},
            f"subscription_tiers_{col}_non_negative",
        )
        for col in (
            "monthly_price",
            "yearly_price",
            "monthly_token_limit",
            "monthly_cost_limit",
            "requests_per_minute",
        )
    ],
    *[
        bad(
            f"tier currency {value!r}",
            "subscription_tiers",
            {"currency": value},
            "subscription_tiers_currency",
        )
        for value in ("usd", "US", "US1")
    ],
    bad(
        "tier features an array",
        "subscription_tiers",
        {"features": '["agents"]'},
        "subscription_tiers_features_object",
    ),
    bad(
        "duplicate tier slug", "subscription_tiers", {"slug": "free"}, "subscription_tiers_slug_key"
    ),
    # billing: subscriptions
    *[
        bad(
            f"second current subscription ({status})",
            "user_subscriptions",
            {"user_id": Ref("user"), "status": status},
            "user_subscriptions_one_current",
        )
        for status in ("active", "trialing", "past_due")
    ],
    bad(
        "subscription status 'paused'",
        "user_subscriptions",
        {"status": "paused"},
        "user_subscriptions_status_valid",
    ),
    bad(
        "billing cycle 'weekly'",
        "user_subscriptions",
        {"billing_cycle": "weekly"},
        "user_subscriptions_billing_cycle_valid",
    ),
    bad(
        "subscription period ending as it starts",
        "user_subscriptions",
        {"current_period_end": T0},
        "user_subscriptions_period_valid",
    ),
    bad(
        "two subscriptions with one provider reference",
        "user_subscriptions",
        {"status": "canceled", "provider_subscription_id": "sub_1"},
        "user_subscriptions_provider_ref_key",
    ),
    # billing: quotas
    *[
        bad(f"quota: negative {col}", "user_quotas", {col: -1}, f"user_quotas_{col}_non_negative")
        for col in ("tokens_limit", "tokens_used", "cost_limit", "cost_used")
    ],
    bad(
        "quota period ending before it starts",
        "user_quotas",
        {"period_end": EARLIER - timedelta(days=30)},
        "user_quotas_period_valid",
    ),
    bad("second quota of a user", "user_quotas", {"user_id": Ref("user")}, "user_quotas_pkey"),
    # billing: payments
    bad(
        "negative payment",
        "payment_history",
        {"amount": Decimal("-12.00")},
        "payment_history_amount_non_negative",
    ),
    *[
        bad(
            f"payment currency {value!r}",
            "payment_history",
            {"currency": value},
            "payment_history_currency",
        )
        for value in ("usd", "Usd", "EU")
    ],
    bad(
        "payment status 'paid'",
        "payment_history",
        {"status": "paid"},
        "payment_history_status_valid",
    ),
    bad(
        "duplicate provider payment id",
        "payment_history",
        {"provider_payment_id": "pi_existing"},
        "payment_history_provider_payment_id_key",
    ),
    bad(
        "payment period ending before it starts",
        "payment_history",
        {"period_end": PERIOD - timedelta(days=1)},
        "payment_history_period_valid",
    ),
    # billing: alerts
    bad(
        "second alert of a kind in a period",
        "usage_alerts",
        {"metric": "tokens"},
        "usage_alerts_once",
    ),
    bad(
        "warning at 100 %",
        "usage_alerts",
        {"threshold_percent": 100},
        "usage_alerts_threshold_matches_type",
    ),
    bad(
        "exceeded at 80 %",
        "usage_alerts",
        {"alert_type": "exceeded"},
        "usage_alerts_threshold_matches_type",
    ),
    bad(
        "warning at 90 %",
        "usage_alerts",
        {"threshold_percent": 90},
        "usage_alerts_threshold_matches_type",
    ),
    # An unknown type breaks the threshold rule too; CHECKs are tested in name order.
    bad(
        "alert type 'critical'",
        "usage_alerts",
        {"alert_type": "critical"},
        "usage_alerts_alert_type_valid",
    ),
    bad(
        "alert metric 'requests'",
        "usage_alerts",
        {"metric": "requests"},
        "usage_alerts_metric_valid",
    ),
    bad(
        "negative value at trigger",
        "usage_alerts",
        {"value_at_trigger": Decimal("-1")},
        "usage_alerts_value_at_trigger_non_negative",
    ),
]


@pytest.mark.parametrize(("table", "overrides", "constraint"), BAD_ROWS)
def test_a_bad_row_is_refused_naming_its_constraint(world, table, overrides, constraint):
    with pytest.raises(IntegrityError, match=f'"{constraint}"'), transaction.atomic():
        _insert(world, table, overrides)


# --- protected history --------------------------------------------------------------------------


def _with_payment(user):
    PaymentHistory.objects.create(
        user=user,
        amount=Decimal("12.00"),
        status="succeeded",
        payment_provider="stripe",
        provider_payment_id=f"pi_{user.id}",
    )


HISTORY = {
    "payment_history": (_with_payment, r"payment_history_user_id_\w+_fk_users_id"),
    "audit_logs": (lambda user: AuditLogFactory(user=user), r"audit_logs_user_id_\w+_fk_users_id"),
    "audit_logs (as actor)": (
        lambda user: AuditLogFactory(user=None, actor=user, event_type="impersonation_started"),
        r"audit_logs_actor_id_\w+_fk_users_id",
    ),
}


@pytest.mark.parametrize("history", HISTORY)
def test_django_refuses_to_delete_a_user_with_history(history):
    make, _ = HISTORY[history]
    user = _user()
    make(user)
    with pytest.raises(ProtectedError), transaction.atomic():
        user.delete()
    assert type(user).objects.filter(pk=user.pk).exists()


@pytest.mark.parametrize("history", HISTORY)
def test_the_database_refuses_to_delete_a_user_with_history(history):
    make, constraint = HISTORY[history]
    user = _user()
    make(user)
    # The foreign keys are DEFERRABLE INITIALLY DEFERRED: check now rather than at commit.
    with (
        pytest.raises(IntegrityError, match=f'"{constraint}"'),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("DELETE FROM users WHERE id = %s", [user.id])
    assert _fetchall("SELECT count(*) FROM users WHERE id = %s", [user.id]) == [(1,)]


def test_a_user_without_history_can_be_deleted():
    user = _user()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("DELETE FROM users WHERE id = %s", [user.id])
    assert _fetchall("SELECT count(*) FROM users WHERE id = %s", [user.id]) == [(0,)]
