"""The database refuses bad rows of the billing tables (tiers, subscriptions, quotas,
payments, alerts) naming the constraint."""

from datetime import timedelta
from decimal import Decimal

import pytest

from witchcraft.tests.schema.rows import EARLIER, PERIOD, T0, Ref, assert_refused, bad

pytestmark = pytest.mark.django_db

BAD_ROWS = [
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
    assert_refused(world, table, overrides, constraint)
