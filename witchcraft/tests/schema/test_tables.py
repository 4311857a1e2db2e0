"""Every app's tables exist under their names and take a valid row, and rows that look like
the bad ones but are fine are accepted: the constraints refuse no more than they should."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from witchcraft.tests.schema.db import fetchall
from witchcraft.tests.schema.rows import T0, VALID_ROWS, Ref, insert

pytestmark = pytest.mark.django_db

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


@pytest.mark.parametrize(("table", "kind"), TABLES.items())
def test_every_table_exists_under_its_name(table, kind):
    rows = fetchall(
        "SELECT relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = %s",
        [table],
    )
    assert rows == [(kind,)], f"{table}: expected relkind {kind!r}, found {rows}"


def test_agent_session_stats_is_a_materialized_view():
    assert fetchall("SELECT ispopulated FROM pg_matviews WHERE matviewname = 'agent_session_stats'")


@pytest.mark.parametrize("table", VALID_ROWS)
def test_a_valid_row_is_accepted(world, table):
    with transaction.atomic():
        insert(world, table)


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
        insert(world, table, overrides)
