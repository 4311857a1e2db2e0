"""The database refuses bad rows of the usage tables (the catalog, usage keys and rows, the
roll-ups) naming the constraint."""

from datetime import timedelta
from decimal import Decimal

import pytest

from witchcraft.tests.schema.rows import DAY, T0, Ref, assert_refused, bad

pytestmark = pytest.mark.django_db

BAD_ROWS = [
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
]


@pytest.mark.parametrize(("table", "overrides", "constraint"), BAD_ROWS)
def test_a_bad_row_is_refused_naming_its_constraint(world, table, overrides, constraint):
    assert_refused(world, table, overrides, constraint)
