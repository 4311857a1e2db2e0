"""Every table has an admin screen that a staff member can open (under row-level security)."""

import pytest
from django.contrib import admin
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from witchcraft.testing.factories import (
    AgentMessageFactory,
    AgentSessionFactory,
    AuditLogFactory,
    catalog_model,
    quota_for,
    usage_request,
)

pytestmark = pytest.mark.django_db

SEED_TABLES = {
    "users",
    "user_profiles",
    "access_tokens",
    "password_reset_tokens",
    "email_verification_tokens",
    "audit_logs",
    "ai_providers",
    "ai_models",
    "ai_usage_requests",
    "ai_usage_daily",
    "ai_usage_monthly",
    "agent_sessions",
    "agent_messages",
    "agent_tool_calls",
    "agent_feedback",
    "subscription_tiers",
    "user_subscriptions",
    "user_quotas",
    "payment_history",
    "usage_alerts",
}


@pytest.fixture
def staff_client(client):
    staff = User.objects.create_superuser(email="staff@example.com", password="x" * 12)
    client.force_login(staff)
    # Like a real staff sign-in, the session has passed a second factor (STAFF_2FA_REQUIRED).
    device = TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def test_every_seed_table_is_registered_in_the_admin():
    registered = {model._meta.db_table for model in admin.site._registry}
    assert registered >= SEED_TABLES
    # The materialized view is shown through the view that filters it by the caller.
    assert "agent_session_stats_visible" in registered


def test_every_admin_list_and_change_page_opens_for_staff(staff_client, user):
    session = AgentSessionFactory(user=user)
    message = AgentMessageFactory(session=session)
    usage_request(user=user, model=catalog_model(), agent_session=session)
    quota_for(user)
    AuditLogFactory(user=user)
    failures = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = staff_client.get(url)
        if response.status_code != 200:
            failures.append((url, response.status_code))
            continue
        obj = model_admin.get_queryset(response.wsgi_request).first()
        if obj is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            if (code := staff_client.get(change).status_code) != 200:
                failures.append((change, code))
    assert not failures
    assert message.pk


def test_a_signed_in_non_staff_user_is_sent_to_the_admin_login(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_staff_can_sign_in_to_the_admin(client, settings):
    # The admin's sign-in page sends staff to the site's own (lockout, audit, second factor).
    settings.STAFF_2FA_REQUIRED = False  # the rule itself: accounts/tests/test_two_factor.py
    User.objects.create_superuser(email="boss@example.com", password="a long admin passphrase")
    response = client.get(reverse("admin:login") + "?next=/admin/")
    assert response.status_code == 302
    response = client.post(
        response["Location"],
        {"email": "boss@example.com", "password": "a long admin passphrase", "next": "/admin/"},
    )
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
