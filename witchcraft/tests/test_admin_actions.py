"""The admin's actions call the services (and are audited); its screens stay cheap and safe."""

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.admin import user_links
from accounts.models import AccessToken, AuditLog, User
from agents.admin import SESSION_ENDED_BY_STAFF
from agents.models import AgentSession
from billing import errors, services
from billing.models import (
    PaymentHistory,
    SubscriptionTier,
    UsageAlert,
    UserQuota,
    UserSubscription,
)
from usage.models import AIUsageRequest
from witchcraft.platform import rls
from witchcraft.testing.factories import (
    AgentSessionFactory,
    AuditLogFactory,
    UserFactory,
    catalog_model,
    quota_for,
    usage_request,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return User.objects.create_superuser(email="staff@example.com", password="x" * 12)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _token(user, n=0):
    return AccessToken.objects.create(
        user=user,
        name=f"token {n}",
        token_hash=hashlib.sha256(f"{user.pk}-{n}".encode()).hexdigest(),
        prefix=f"wc_{n:07d}",
        expires_at=timezone.now() + timedelta(days=30),
    )


def _act(client, model, action, pks):
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return client.post(url, {"action": action, admin.helpers.ACTION_CHECKBOX_NAME: pks})


def _audit(event, user):
    return list(AuditLog.objects.filter(event_type=event, user=user))


def test_revoke_selected_tokens(staff_client, staff, user):
    tokens = [_token(user, 1), _token(user, 2)]
    response = _act(staff_client, AccessToken, "revoke_selected", [t.pk for t in tokens])
    assert response.status_code == 302
    assert not AccessToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    rows = _audit("token_revoked", user)
    assert len(rows) == 2
    assert {row.actor_id for row in rows} == {staff.pk}


def test_end_selected_sessions(staff_client, staff, user):
    session = AgentSessionFactory(user=user)
    response = _act(staff_client, AgentSession, "end_selected", [session.pk])
    assert response.status_code == 302
    session.refresh_from_db()
    assert not session.is_active
    assert session.ended_at is not None
    (row,) = _audit(SESSION_ENDED_BY_STAFF, user)
    assert row.actor_id == staff.pk
    assert row.target_id == str(session.pk)


def test_reset_selected_quotas(staff_client, staff, user):
    quota = quota_for(user)
    UserQuota.objects.filter(pk=quota.pk).update(tokens_used=500, cost_used=Decimal("1.5"))
    response = _act(staff_client, UserQuota, "reset_selected", [user.pk])
    assert response.status_code == 302
    quota.refresh_from_db()
    assert (quota.tokens_used, quota.cost_used) == (0, 0)
    (row,) = _audit(services.QUOTA_RESET, user)
    assert row.actor_id == staff.pk


def test_move_to_a_tier_ends_the_subscription_and_sets_the_limits(staff_client, staff, user):
    quota_for(user)
    free = SubscriptionTier.objects.get(slug="free")
    pro = SubscriptionTier.objects.get(slug="pro")
    now = timezone.now()
    old = UserSubscription.objects.create(
        user=user,
        tier=free,
        status="active",
        current_period_start=now - timedelta(days=3),
        current_period_end=now + timedelta(days=27),
    )
    response = _act(staff_client, UserSubscription, "move_to_pro", [old.pk])
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.status == "canceled"
    current = UserSubscription.objects.get(user=user, status="active")
    assert current.tier_id == pro.pk
    quota = UserQuota.objects.get(user=user)
    assert quota.tokens_limit == pro.monthly_token_limit
    assert quota.cost_limit == pro.monthly_cost_limit
    (row,) = _audit(services.TIER_CHANGED, user)
    assert row.actor_id == staff.pk
    assert row.details == {"from": "free", "to": "pro"}
    # Already on the tier: nothing changes, nothing more is audited.
    _act(staff_client, UserSubscription, "move_to_pro", [current.pk])
    assert UserSubscription.objects.filter(user=user).count() == 2
    assert len(_audit(services.TIER_CHANGED, user)) == 1


def test_the_staff_functions_refuse_a_non_staff_caller(user):
    quota_for(user)
    with rls.user_context(user), pytest.raises(errors.QuotaError) as refused:
        services.quota_reset(user_id=user.pk)
    assert refused.value.code == errors.FORBIDDEN
    with rls.user_context(user), pytest.raises(errors.QuotaError) as refused:
        services.subscription_change_tier(user_id=user.pk, tier_slug="pro")
    assert refused.value.code == errors.FORBIDDEN


def test_an_unknown_tier_is_refused(staff):
    with rls.user_context(staff), pytest.raises(errors.QuotaError) as refused:
        services.subscription_change_tier(user_id=staff.pk, tier_slug="no-such-tier")
    assert refused.value.code == errors.INVALID


def test_the_functions_are_not_executable_by_public():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE'),"
            " p.prosecdef FROM pg_proc p WHERE p.proname IN"
            " ('reset_user_quota', 'change_user_tier')"
        )
        rows = cursor.fetchall()
    assert len(rows) == 2
    assert all(not public and definer for _, public, definer in rows)


def test_a_non_staff_user_cannot_reach_the_admin(client, user):
    client.force_login(user)
    for url in ("/admin/", reverse("admin:billing_userquota_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]
    quota_for(user)
    _act(client, UserQuota, "reset_selected", [user.pk])
    assert not _audit(services.QUOTA_RESET, user)


@pytest.mark.parametrize(
    "model", [AuditLog, UserQuota, UserSubscription, PaymentHistory, AIUsageRequest]
)
def test_read_only_admins_refuse_add_change_and_delete(staff_client, rf, staff, model):
    model_admin = admin.site._registry[model]
    request = rf.get("/admin/")
    request.user = staff
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    opts = model._meta
    add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
    assert staff_client.get(add).status_code == 403


def test_the_user_page_links_to_the_users_rows(staff_client, user):
    response = staff_client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    for _, url in user_links(user.pk):
        assert url.replace("&", "&amp;") in page or url in page
    assert f"/admin/agents/agentsession/?user__id__exact={user.pk}" in page
    assert f"/dashboard/users/{user.pk}/" in page
    # The filtered lists open and show only that user's rows.
    AgentSessionFactory(user=user, title="mine")
    AgentSessionFactory(title="someone else's")
    listing = staff_client.get(f"/admin/agents/agentsession/?user__id__exact={user.pk}")
    assert listing.status_code == 200
    assert b"mine" in listing.content
    assert b"someone else" not in listing.content


def _rows(count):
    model = catalog_model()
    for _ in range(count):
        user = UserFactory()
        session = AgentSessionFactory(user=user)
        usage_request(user=user, model=model, agent_session=session)
        quota_for(user)
        _token(user)
        AuditLogFactory(user=user)
        UserSubscription.objects.create(
            user=user,
            tier=SubscriptionTier.objects.get(slug="free"),
            status="active",
            current_period_start=timezone.now(),
            current_period_end=timezone.now() + timedelta(days=30),
        )


def _changelist_queries(client):
    counts = {}
    for model in admin.site._registry:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, url
        counts[url] = len(queries)
    return counts


def test_changelists_run_a_bounded_number_of_queries(staff_client, django_assert_max_num_queries):
    _rows(1)
    one = _changelist_queries(staff_client)
    _rows(14)
    many = _changelist_queries(staff_client)
    # The count does not grow with the rows (no query per row), and stays small.
    assert {url: n for url, n in many.items() if n > one[url]} == {}
    for model in admin.site._registry:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        with django_assert_max_num_queries(25):
            staff_client.get(url)


def test_staff_acknowledge_an_alert_and_nothing_else_changes(staff_client, staff, user):
    quota = quota_for(user)
    alert = UsageAlert.objects.create(
        user=user,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=quota.period_start,
        value_at_trigger=Decimal(80),
        limit_at_trigger=Decimal(100),
    )
    url = reverse("admin:billing_usagealert_change", args=[alert.pk])
    assert staff_client.get(url).status_code == 200
    response = staff_client.post(
        url,
        {
            "acknowledged_at_0": "2026-11-25",
            "acknowledged_at_1": "12:00:00",
            "acknowledged_by": staff.pk,
        },
    )
    assert response.status_code == 302, response.content[:2000]
    alert.refresh_from_db()
    assert alert.acknowledged_by_id == staff.pk
    assert alert.acknowledged_at is not None
    assert alert.threshold_percent == 80
