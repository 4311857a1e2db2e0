"""A user's daily usage, read by one selector (``usage.selectors.usage_daily_rows``) that every
page sums or lists its own way: only the user's rows, only the range's days, at most a year."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from usage import selectors, services
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def _record(user, model, when):
    with transaction.atomic(), rls.service_context():
        services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=100,
            output_tokens=10,
            cost=Decimal("0.01"),
            latency_ms=100,
            status="success",
            created_at=when,
        )


def test_the_rows_are_the_users_own_within_the_range():
    gpt = factories.catalog_model("gpt-5-mini")
    ann, ben = factories.UserFactory(), factories.UserFactory()
    for days_ago in (0, 2, 5):
        _record(ann, gpt, TODAY - timedelta(days=days_ago))
    _record(ben, gpt, TODAY)
    rows = selectors.usage_daily_rows(
        user_id=ann.pk,
        date_from=(TODAY - timedelta(days=2)).date(),
        date_to=TODAY.date(),
    )
    assert sorted(rows.values_list("usage_date", flat=True)) == [
        (TODAY - timedelta(days=2)).date(),
        TODAY.date(),
    ]
    assert set(rows.values_list("user_id", flat=True)) == {ann.pk}


@pytest.mark.parametrize("days", [-1, selectors.MAX_DAILY_DAYS])
def test_a_backward_or_longer_than_a_year_range_is_refused(days):
    end = TODAY.date()
    with pytest.raises(ValueError, match="at most 366 days"):
        selectors.usage_daily_rows(user_id=1, date_from=end - timedelta(days=days), date_to=end)


def test_a_year_to_the_day_is_read():
    end = TODAY.date()
    start = end - timedelta(days=selectors.MAX_DAILY_DAYS - 1)
    assert list(selectors.usage_daily_rows(user_id=1, date_from=start, date_to=end)) == []
