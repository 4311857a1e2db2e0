"""Billing's facts, each read by one selector: the user's current subscription
(``subscription_current`` and, for list pages, ``subscriptions_current``) and the quota alerts
by state (``usage_alerts``, ``alerts_open``)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery

from accounts.models import User
from billing import selectors
from billing.models import UsageAlert, UserSubscription
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db


def _move_to(user: User, slug: str) -> None:
    """The owner moves the user to ``slug`` (the current subscription is canceled)."""
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT change_user_tier(%s, %s)", [user.pk, slug])


def test_the_current_subscription_is_the_one_in_a_current_status(django_assert_num_queries):
    user = factories.UserFactory()
    _move_to(user, "pro")
    _move_to(user, "team")
    assert UserSubscription.objects.filter(user=user).count() == 2
    with django_assert_num_queries(1):
        current = selectors.subscription_current(user_id=user.pk)
        # The tier comes with the row: the pages read its name and limits.
        assert (current.status, current.tier.slug) == ("active", "team")
    UserSubscription.objects.filter(pk=current.pk).update(status="past_due")
    assert selectors.subscription_current(user_id=user.pk).pk == current.pk
    UserSubscription.objects.filter(pk=current.pk).update(status="expired")
    assert selectors.subscription_current(user_id=user.pk) is None


def test_a_user_without_a_subscription_has_none():
    assert selectors.subscription_current(user_id=factories.UserFactory().pk) is None


def test_a_list_reads_every_users_plan_in_its_one_query(django_assert_num_queries):
    on_pro, on_team, on_none = (factories.UserFactory() for _ in range(3))
    _move_to(on_pro, "pro")
    _move_to(on_team, "pro")
    _move_to(on_team, "team")
    plans = User.objects.filter(pk__in=[on_pro.pk, on_team.pk, on_none.pk]).annotate(
        plan=Subquery(
            selectors.subscriptions_current(user_id=OuterRef("pk")).values("tier__slug")[:1]
        )
    )
    with django_assert_num_queries(1):
        found = dict(plans.values_list("pk", "plan"))
    assert found == {on_pro.pk: "pro", on_team.pk: "team", on_none.pk: None}


def _alert(user: User, *, hours_ago: int, acknowledged: bool = False, resolved: bool = False):
    triggered = datetime.now(UTC) - timedelta(hours=hours_ago)
    return UsageAlert.objects.create(
        user=user,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=triggered,  # one warning per period: each alert its own
        value_at_trigger=Decimal(80),
        limit_at_trigger=Decimal(100),
        triggered_at=triggered,
        acknowledged_at=triggered if acknowledged else None,
        resolved_at=triggered if resolved else None,
    )


@pytest.fixture
def alerts():
    """Ann: open (1 h ago), acknowledged (2 h), resolved (3 h); Ben: open (4 h)."""
    ann, ben = factories.UserFactory(), factories.UserFactory()
    return {
        "ann": ann,
        "open": _alert(ann, hours_ago=1),
        "acknowledged": _alert(ann, hours_ago=2, acknowledged=True),
        "resolved": _alert(ann, hours_ago=3, acknowledged=True, resolved=True),
        "ben_open": _alert(ben, hours_ago=4),
    }


def test_open_alerts_are_the_unresolved_ones_newest_first(alerts):
    assert selectors.alerts_open() == [
        alerts["open"],
        alerts["acknowledged"],
        alerts["ben_open"],
    ]
    assert selectors.alerts_open(limit=1) == [alerts["open"]]
    assert selectors.alerts_open(user_id=alerts["ann"].pk) == [
        alerts["open"],
        alerts["acknowledged"],
    ]


def test_each_state_filters_the_alerts_as_alert_state_names_them(alerts):
    ann = alerts["ann"].pk
    for state in selectors.ALERT_STATUSES:
        listed = list(selectors.usage_alerts(status=state, user_id=ann))
        assert listed == [alerts[state]]
        assert selectors.alert_state(listed[0]) == state
    assert len(selectors.usage_alerts(user_id=ann)) == 3
    assert len(selectors.usage_alerts(status="no such state")) == 4


def test_every_users_alerts_come_with_their_people(alerts, django_assert_num_queries):
    with django_assert_num_queries(1):
        emails = [alert.user.email for alert in selectors.alerts_open()]
    assert emails[-1] == alerts["ben_open"].user.email
