"""``/dashboard/quotas/``: quotas near or over their limit, the alert history with acknowledge,
and the quota of any user (Django test client, real PostgreSQL)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import reverse

from accounts.models import AuditLog, User
from billing.models import UsageAlert, UserQuota
from billing.services import ALERT_ACKNOWLEDGED
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

URL = "/dashboard/quotas/"


@pytest.fixture
def staff(client):
    member = User.objects.create_user(
        email="staff@example.com", password="correct horse battery", is_staff=True
    )
    client.force_login(member)
    return member


def user_at(percent: int, *, email: str | None = None, full_name: str = "") -> User:
    """A user whose free-tier quota is ``percent`` % used (tokens), set as the owner would."""
    user = factories.UserFactory(
        **({"email": email} if email else {}), full_name=full_name or "Quota User"
    )
    quota = factories.quota_for(user)
    UserQuota.objects.filter(pk=user.pk).update(tokens_used=quota.tokens_limit * percent // 100)
    return user


def alert_for(user: User, *, resolved: bool = False, acknowledged_by: User | None = None):
    now = datetime.now(UTC)
    return UsageAlert.objects.create(
        user=user,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=now.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        value_at_trigger=Decimal(80_000),
        limit_at_trigger=Decimal(100_000),
        resolved_at=now if resolved else None,
        acknowledged_at=now if acknowledged_by else None,
        acknowledged_by=acknowledged_by,
    )


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(resolve_url(settings.LOGIN_URL))


def test_normal_user_gets_404(client, user):
    client.force_login(user)
    assert client.get(URL).status_code == 404


def test_non_staff_post_acknowledge_gets_404(client, user):
    alert = alert_for(factories.UserFactory())
    client.force_login(user)
    url = reverse("dashboard:alert_acknowledge", args=[alert.pk])
    assert client.post(url).status_code == 404
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_empty_states(client, staff):
    response = client.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "No user is at 80 % of a quota." in body
    assert "No quota alerts." in body
    assert 'href="/dashboard/quotas/"' in body  # in the navigation


def test_lists_exactly_the_users_at_or_over_80_percent(client, staff):
    below = user_at(79, email="below@example.com")
    warn = user_at(80, email="warn@example.com")
    over = user_at(100, email="over@example.com")
    way_over = user_at(130, email="wayover@example.com")
    response = client.get(URL)
    body = response.content.decode()
    assert below.email not in body
    rows = response.context["quota_rows"]
    assert [r["user"].email for r in rows] == [way_over.email, over.email, warn.email]
    assert [r["over"] for r in rows] == [True, True, False]
    assert response.context["counts"] == {"approaching": 3, "over": 2}
    assert '<progress max="100" value="80"' in body
    assert '<progress max="100" value="100"' in body  # 130 % is drawn full
    assert "130 % · over" in body
    assert reverse("dashboard:user", args=[warn.pk]) in body


def test_the_list_is_paginated(client, staff):
    for _ in range(51):
        user_at(90)
    first = client.get(URL)
    assert len(first.context["quota_rows"]) == 50
    second = client.get(URL, {"page": 2})
    assert len(second.context["quota_rows"]) == 1


def test_query_count_is_bounded(client, staff, django_assert_max_num_queries):
    user_at(90)
    alert_for(factories.UserFactory())
    with django_assert_max_num_queries(20) as one:
        client.get(URL)
    for _ in range(30):
        alert_for(user_at(95))
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(URL)
    assert len(response.context["quota_rows"]) == 31


def test_names_are_escaped(client, staff):
    user_at(90, full_name="<script>alert(1)</script>")
    body = client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_quota_of_any_user(client, staff):
    user_at(40, email="lookup@example.com")
    response = client.get(URL, {"email": "Lookup@Example.com"})
    row = response.context["looked_up"]
    assert row["user"].email == "lookup@example.com"
    assert row["percent"] == 40
    assert '<progress max="100" value="40"' in response.content.decode()

    missing = client.get(URL, {"email": "nobody@example.com"}).content.decode()
    assert "No quota for nobody@example.com" in missing


def test_alert_history_filters(client, staff):
    owner = factories.UserFactory(email="owner@example.com")
    open_alert = alert_for(owner)
    other = factories.UserFactory()
    acked = alert_for(other, acknowledged_by=staff)
    resolved = alert_for(factories.UserFactory(), resolved=True)

    def ids(status):
        return {a.pk for a in client.get(URL, {"status": status}).context["alert_page"]}

    assert ids("") == {open_alert.pk, acked.pk, resolved.pk}
    assert ids("open") == {open_alert.pk}
    assert ids("acknowledged") == {acked.pk}
    assert ids("resolved") == {resolved.pk}


def test_acknowledge_sets_the_fields_and_audits(client, staff):
    owner = factories.UserFactory()
    alert = alert_for(owner)
    url = reverse("dashboard:alert_acknowledge", args=[alert.pk])
    page = client.get(URL).content.decode()
    assert f'action="{url}"' in page
    assert "csrfmiddlewaretoken" in page

    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    assert alert.acknowledged_by_id == staff.pk
    log = AuditLog.objects.get(event_type=ALERT_ACKNOWLEDGED)
    assert log.user_id == owner.pk
    assert log.actor_id == staff.pk
    assert log.target_id == str(alert.pk)

    # A second acknowledgement changes nothing and writes nothing.
    first_at = alert.acknowledged_at
    client.post(url)
    alert.refresh_from_db()
    assert alert.acknowledged_at == first_at
    assert AuditLog.objects.filter(event_type=ALERT_ACKNOWLEDGED).count() == 1


def test_acknowledge_needs_a_csrf_token(staff):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff)
    alert = alert_for(factories.UserFactory())
    response = csrf_client.post(reverse("dashboard:alert_acknowledge", args=[alert.pk]))
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_acknowledge_unknown_alert_is_404(client, staff):
    assert client.post(reverse("dashboard:alert_acknowledge", args=[999999])).status_code == 404
