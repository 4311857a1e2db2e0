"""Temporary limit raises (raise_quota_limit, quota_tokens_limit / quota_cost_limit) and the
quota list's projection (billing/projections.py). The SQL runs as the runtime role in a real
identity context (``rls.user_context``); time is moved by setting raised_until in the past as
the table owner."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import transaction
from django.urls import reverse

from accounts.models import AuditLog, User
from billing import errors, projections, selectors, services
from billing.models import QuotaLimitRaise, UserQuota
from witchcraft.platform import db_errors, rls
from witchcraft.testing.factories import UserFactory, quota_for

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)


def staff_with(*codenames: str, email: str = "quota-staff@example.com") -> User:
    member = User.objects.create_user(email=email, password="pw-1234567", is_staff=True)
    for codename in codenames:
        member.user_permissions.add(
            Permission.objects.get(content_type__app_label="billing", codename=codename)
        )
    return member


@pytest.fixture
def staff():
    return staff_with("change_userquota")


@pytest.fixture
def free_user(user):
    quota_for(user, "free")  # 100 000 tokens, $1.00
    return user


def raise_as(actor, user, *, tokens=None, cost=None, until=None) -> int:
    with transaction.atomic(), rls.user_context(actor):
        return services.quota_raise_limit(
            user_id=user.pk,
            tokens_limit=tokens,
            cost_limit=None if cost is None else Decimal(cost),
            until=until or NOW + timedelta(days=1),
        )


def consume(user, tokens: int, cost: str = "0") -> services.QuotaDecision:
    with transaction.atomic(), rls.user_context(user, may_record=True):
        return services.quota_consume(user_id=user.pk, tokens=tokens, cost=Decimal(cost))


def remaining(user):
    with transaction.atomic(), rls.user_context(user):
        return selectors.quota_remaining(user_id=user.pk)


def test_a_raise_is_honoured_until_its_end_and_not_after(free_user, staff):
    raise_as(staff, free_user, tokens=300_000, cost="5")
    decision = consume(free_user, 150_000, "2")  # beyond the plan's 100 000 / $1
    assert decision.allowed
    assert (decision.tokens_remaining, decision.cost_remaining) == (150_000, Decimal(3))
    left = remaining(free_user)
    assert (left.tokens_limit, left.cost_limit) == (300_000, Decimal(5))
    assert consume(free_user, 150_001).reason == services.REASON_TOKENS_EXCEEDED

    # The end passes (moved as the table owner): the plan's limits again, with no job run.
    UserQuota.objects.filter(pk=free_user.pk).update(raised_until=NOW - timedelta(seconds=1))
    refused = consume(free_user, 1)
    assert (refused.allowed, refused.reason) == (False, services.REASON_TOKENS_EXCEEDED)
    assert refused.tokens_remaining == 0
    left = remaining(free_user)
    assert (left.tokens_limit, left.cost_limit) == (100_000, Decimal(1))


def test_only_the_raised_metric_changes(free_user, staff):
    raise_as(staff, free_user, cost="3")
    assert consume(free_user, 100_001).reason == services.REASON_TOKENS_EXCEEDED
    assert consume(free_user, 10, "2.5").allowed


def test_a_plan_above_the_raise_wins(free_user, staff):
    raise_as(staff, free_user, tokens=200_000)
    UserQuota.objects.filter(pk=free_user.pk).update(tokens_limit=500_000)  # a bigger plan
    assert remaining(free_user).tokens_limit == 500_000


def test_a_raise_is_recorded_and_audited(free_user, staff):
    raise_id = raise_as(staff, free_user, tokens=250_000)
    row = QuotaLimitRaise.objects.get(pk=raise_id)
    assert (row.user_id, row.raised_by_id) == (free_user.pk, staff.pk)
    assert (row.tokens_limit_from, row.tokens_limit_to) == (100_000, 250_000)
    assert (row.cost_limit_from, row.cost_limit_to) == (Decimal(1), None)
    audit = AuditLog.objects.get(event_type=services.QUOTA_LIMIT_RAISED)
    assert (audit.user_id, audit.actor_id) == (free_user.pk, staff.pk)
    # A second raise replaces the first; its "from" is the limit in force.
    raise_as(staff, free_user, tokens=400_000)
    second = QuotaLimitRaise.objects.exclude(pk=raise_id).get()
    assert second.tokens_limit_from == 250_000
    assert UserQuota.objects.get(pk=free_user.pk).raised_tokens_limit == 400_000


@pytest.mark.parametrize("who", ["user", "staff_without_permission", "anonymous"], ids=lambda w: w)
def test_only_staff_with_the_permission_may_raise(free_user, who):
    actor = {
        "user": free_user,
        "staff_without_permission": staff_with(),
        "anonymous": AnonymousUser(),
    }[who]
    with pytest.raises(errors.QuotaError) as refused:
        raise_as(actor, free_user, tokens=500_000)
    assert refused.value.code == errors.FORBIDDEN
    assert UserQuota.objects.get(pk=free_user.pk).raised_until is None
    assert not QuotaLimitRaise.objects.exists()


def _next_period_end() -> datetime:
    start = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return ((start + timedelta(days=32)).replace(day=1) + timedelta(days=32)).replace(day=1)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "token limit, the cost limit or both"),
        ({"tokens": 500_000, "until": NOW - timedelta(minutes=1)}, "in the future"),
        ({"tokens": 500_000, "until": _next_period_end() + timedelta(seconds=1)}, "next"),
        ({"tokens": 100_000}, "above the plan"),
        ({"cost": "1"}, "above the plan"),
        ({"tokens": -1}, "between"),
        ({"tokens": 10**15 + 1}, "between"),
        ({"cost": "1000000"}, "between"),
    ],
)
def test_bad_raises_are_refused_and_write_nothing(free_user, staff, kwargs, words):
    with pytest.raises(errors.QuotaError) as refused:
        raise_as(staff, free_user, **kwargs)
    assert refused.value.code == errors.INVALID
    assert words in refused.value.message
    assert UserQuota.objects.get(pk=free_user.pk).raised_until is None
    assert not QuotaLimitRaise.objects.exists()
    assert not AuditLog.objects.filter(event_type=services.QUOTA_LIMIT_RAISED).exists()


def test_the_end_of_the_next_period_is_allowed(free_user, staff):
    raise_as(staff, free_user, tokens=500_000, until=_next_period_end())
    assert remaining(free_user).tokens_limit == 500_000


def test_a_user_without_a_quota(staff):
    lonely = UserFactory()
    with pytest.raises(errors.QuotaError) as refused:
        raise_as(staff, lonely, tokens=500_000)
    assert refused.value.code == db_errors.NOT_FOUND


# Projection ---------------------------------------------------------------------------------
START = datetime(2026, 12, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)


def project(used, limit, now):
    return projections.project_full(
        used=used, limit=limit, period_start=START, period_end=END, now=now
    )


def test_projection_at_this_pace():
    # 10 days in, 50 % used: 100 % after 10 more days.
    result = project(50, 100, START + timedelta(days=10))
    assert result == projections.Projection(projections.PROJECTED, START + timedelta(days=20))


def test_projection_edge_cases():
    now = START + timedelta(days=10)
    assert project(0, 100, now).state == projections.NOT_THIS_PERIOD  # no use yet
    assert project(100, 100, now).state == projections.REACHED
    assert project(150, 100, now).state == projections.REACHED  # over
    assert project(10, 100, now).state == projections.NOT_THIS_PERIOD  # day 100 > period
    assert project(50, 0, now).state == projections.NO_LIMIT
    assert project(50, 100, START).state == projections.NOT_THIS_PERIOD  # no time elapsed
    assert project(99, 100, END).state == projections.NOT_THIS_PERIOD  # the period ended
    # Ending just inside the period, and exactly at its end.
    almost = START + timedelta(days=15, hours=12)  # half the month
    assert project(Decimal("50.1"), 100, almost).state == projections.PROJECTED
    assert project(50, 100, almost).state == projections.NOT_THIS_PERIOD
    assert project(Decimal("0.000001"), 10**15, now).state == projections.NOT_THIS_PERIOD


def test_fired_limits_name_the_metric_and_threshold(free_user):
    UserQuota.objects.filter(pk=free_user.pk).update(tokens_used=85_000, cost_used=Decimal("1.2"))
    quota = UserQuota.objects.get(pk=free_user.pk)
    fired = projections.fired_limits(quota, now=NOW)
    assert [(f.metric, f.threshold, f.percent) for f in fired] == [
        ("cost", 100, 120),
        ("tokens", 80, 85),
    ]
    assert fired[0].projection.state == projections.REACHED


def test_the_quota_list_names_the_metric_and_the_projection(client, free_user):
    boss = User.objects.create_superuser(email="boss@example.com", password="pw-1234567")
    client.force_login(boss)
    UserQuota.objects.filter(pk=free_user.pk).update(tokens_used=90_000)
    body = client.get(reverse("dashboard:quotas")).content.decode()
    assert "tokens ≥ 80 %" in body
    assert 'class="projection-tokens"' in body
    assert f'href="{reverse("dashboard:user", args=[free_user.pk])}#actions"' in body
    UserQuota.objects.filter(pk=free_user.pk).update(tokens_used=100_000)
    body = client.get(reverse("dashboard:quotas")).content.decode()
    assert "tokens ≥ 100 %" in body
    assert "tokens: reached" in body


# The admin's action ------------------------------------------------------------------------
ADMIN_QUOTAS = "/admin/billing/userquota/"


def test_the_admin_raises_through_the_same_service(client, free_user):
    boss = User.objects.create_superuser(email="boss@example.com", password="pw-1234567")
    client.force_login(boss)
    chosen = {"action": "raise_limit", "_selected_action": [free_user.pk]}
    form_page = client.post(ADMIN_QUOTAS, chosen)
    assert form_page.status_code == 200
    assert 'id="raise_limit_form"' in form_page.content.decode()
    assert UserQuota.objects.get(pk=free_user.pk).raised_until is None

    until = (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    refused = client.post(
        ADMIN_QUOTAS, {**chosen, "apply": "1", "tokens_limit": "5", "until": until}
    )
    assert refused.status_code == 200
    assert "above the plan" in refused.content.decode()
    assert not QuotaLimitRaise.objects.exists()

    done = client.post(
        ADMIN_QUOTAS, {**chosen, "apply": "1", "tokens_limit": "700000", "until": until}
    )
    assert done.status_code == 302
    assert UserQuota.objects.get(pk=free_user.pk).raised_tokens_limit == 700_000
    audit = AuditLog.objects.get(event_type=services.QUOTA_LIMIT_RAISED)
    assert (audit.user_id, audit.actor_id) == (free_user.pk, boss.pk)


def test_the_admin_action_needs_the_change_permission(client, free_user):
    viewer = User.objects.create_user(
        email="viewer@example.com", password="pw-1234567", is_staff=True
    )
    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="billing", codename="view_userquota")
    )
    client.force_login(viewer)
    page = client.get(ADMIN_QUOTAS).content.decode()
    assert "raise_limit" not in page
    until = (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    client.post(
        ADMIN_QUOTAS,
        {
            "action": "raise_limit",
            "_selected_action": [free_user.pk],
            "apply": "1",
            "tokens_limit": "700000",
            "until": until,
        },
    )
    assert UserQuota.objects.get(pk=free_user.pk).raised_until is None
