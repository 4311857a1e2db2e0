"""Properties of record_ai_usage over any sequence of records.

Whatever the records (spread across UTC day and month boundaries, with failures, retries and
reservations), the raw rows, the daily roll-up and the monthly roll-up agree day by day and
month by month, and the quota holds exactly what was booked in its period.

Hypothesis and function-scoped fixtures do not mix (a fixture would be shared by every
example), so each example makes its own user inside a savepoint that is rolled back after it.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from billing import services as billing_services
from billing.models import UserQuota
from usage import services
from usage.models import AIUsageDaily, AIUsageMonthly, AIUsageRequest
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory, catalog_model, quota_for

pytestmark = pytest.mark.django_db

THREE_DAYS_US = 3 * 24 * 3600 * 1_000_000
MODELS = ("gpt-5-mini", "claude-haiku-4-5", "llama3.1:8b")
STATUSES = ("success", "success", "error", "timeout", "cancelled", "rejected")

a_record = st.fixed_dictionaries(
    {
        # Around the start of this month (the quota's period start) or of the next (its end).
        "anchor": st.sampled_from(("this_month", "next_month")),
        "offset_us": st.integers(-THREE_DAYS_US, THREE_DAYS_US),
        "model": st.sampled_from(MODELS),
        "input_tokens": st.integers(0, 50_000),
        "cached_percent": st.integers(0, 100),
        "output_tokens": st.integers(0, 20_000),
        "status": st.sampled_from(STATUSES),
        "latency_ms": st.none() | st.integers(0, 60_000),
        # Reserve an estimate first (and pass it back), as the AI request flow does.
        "estimate": st.none() | st.integers(0, 80_000),
        # Retry the request of an earlier record (by index) instead of a new request id.
        "retry_of": st.none() | st.integers(0, 20),
    }
)


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _play(user, records: list[dict]) -> None:
    this_month = _month_start(datetime.now(UTC))
    anchors = {
        "this_month": this_month,
        "next_month": (this_month + timedelta(days=32)).replace(day=1),
    }
    request_ids: list[str] = []
    with rls.service_context():
        for index, spec in enumerate(records):
            retry_of = spec["retry_of"]
            retry = retry_of is not None and retry_of < len(request_ids)
            request_id = request_ids[retry_of] if retry else f"req-{index}"
            request_ids.append(request_id)
            reservation_id = None
            # A retry re-sends the first call's record; it does not reserve again (a duplicate
            # record changes nothing, so a second reservation would never be released).
            if spec["estimate"] is not None and not retry:
                estimate_cost = Decimal(spec["estimate"]) / 1_000_000
                decision = billing_services.quota_consume(
                    user_id=user.id, tokens=spec["estimate"], cost=estimate_cost
                )
                if decision.allowed:
                    reservation_id = decision.reservation_id
            model = catalog_model(spec["model"])
            services.usage_record(
                user_id=user.id,
                provider_id=model.provider_id,
                model_id=model.id,
                input_tokens=spec["input_tokens"],
                cached_input_tokens=spec["input_tokens"] * spec["cached_percent"] // 100,
                output_tokens=spec["output_tokens"],
                status=spec["status"],
                latency_ms=spec["latency_ms"],
                request_id=request_id,
                reservation_id=reservation_id,
                created_at=anchors[spec["anchor"]] + timedelta(microseconds=spec["offset_us"]),
            )


def _totals(rows, key) -> dict:
    """(requests, errors, tokens, cost, latency sum, latency count) per key."""
    sums: dict = defaultdict(lambda: [0, 0, 0, Decimal(0), 0, 0])
    for row in rows:
        total = sums[key(row)]
        total[0] += 1
        total[1] += row.status != "success"
        total[2] += row.total_tokens
        total[3] += row.cost
        total[4] += row.latency_ms or 0
        total[5] += row.latency_ms is not None
    return {k: tuple(v) for k, v in sums.items()}


def _rollup_totals(rows, key) -> dict:
    return {
        key(r): (
            r.request_count,
            r.error_count,
            r.total_tokens,
            r.cost,
            r.latency_ms_sum,
            r.latency_count,
        )
        for r in rows
    }


@settings(max_examples=25, deadline=None)
@given(records=st.lists(a_record, min_size=1, max_size=10))
def test_raw_rows_rollups_and_quota_always_agree(records):
    with transaction.atomic():
        user = UserFactory(password=None)  # an unusable password: no slow hashing per example
        quota_for(user, "pro")
        _play(user, records)

        raw = list(AIUsageRequest.objects.filter(user=user))
        daily = AIUsageDaily.objects.filter(user=user)
        monthly = AIUsageMonthly.objects.filter(user=user)

        # Retries were counted once.
        assert len(raw) == len({row.request_id for row in raw})
        # Day by day (UTC, and per provider and model), then month by month.
        assert _rollup_totals(
            daily, lambda r: (r.usage_date, r.provider_id, r.model_id)
        ) == _totals(
            raw, lambda r: (r.created_at.astimezone(UTC).date(), r.provider_id, r.model_id)
        )
        assert _rollup_totals(monthly, lambda r: (r.year, r.month)) == _totals(
            raw, lambda r: (r.created_at.astimezone(UTC).year, r.created_at.astimezone(UTC).month)
        )
        # The quota holds what was booked in its period, reservations all released.
        quota = UserQuota.objects.get(user=user)
        in_period = [r for r in raw if quota.period_start <= r.created_at < quota.period_end]
        assert quota.tokens_used == sum(r.total_tokens for r in in_period)
        assert quota.cost_used == sum((r.cost for r in in_period), Decimal(0))

        transaction.set_rollback(True)
