"""A valid row of every table, and how the constraint tests write one with one thing wrong.

Every bad row is written with raw SQL, around Django, and must be refused with an error that
names the constraint. Each one is a valid row of its table (VALID_ROWS, each accepted on its
own, test_tables.py) with one thing wrong, so the named constraint is the only one it breaks.
The rows they clash with or point at are made by the ``world`` fixture (conftest.py).
"""

import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from witchcraft.testing.factories import UserFactory

T0 = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
LATER = T0 + timedelta(days=30)
EARLIER = T0 - timedelta(days=1)
PERIOD = datetime(2026, 3, 1, tzinfo=UTC)
DAY = date(2026, 3, 14)


def plain_user():
    # No password: hashing one costs a good part of a second, and no test here signs in.
    return UserFactory(password=None)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Ref(str):
    """A value taken from the ``world`` fixture: the id (or email, ...) of an object it made."""


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


def insert(world: dict, table: str, overrides: dict | None = None) -> None:
    row = {**VALID_ROWS[table], **(overrides or {})}
    values = {col: world[v] if isinstance(v, Ref) else v for col, v in row.items()}
    columns = ", ".join(f'"{col}"' for col in values)
    placeholders = ", ".join(f"%({col})s" for col in values)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", values)


def bad(description: str, table: str, overrides: dict, constraint: str):
    return pytest.param(table, overrides, constraint, id=description)


NOT_OBJECTS = {"an array": "[]", "a string": '"text"', "a number": "42", "JSON null": "null"}


def assert_refused(world: dict, table: str, overrides: dict, constraint: str) -> None:
    """Inserting the valid row of ``table`` with ``overrides`` fails naming ``constraint``."""
    with pytest.raises(IntegrityError, match=f'"{constraint}"'), transaction.atomic():
        insert(world, table, overrides)
