"""Staff actions on a user (witchcraft/dashboard/user_actions.py): from the 360° page's
"Actions" section and the quota list. Each works, is audited with the staff member as actor and
the user as subject, refuses non-staff (404) and staff without the permission (403, buttons
hidden), and refuses bad input with a form error and nothing written. Requests go through the
middleware, so the services and SQL functions run as the runtime role."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse

from accounts.models import AccessToken, AuditLog, User, UserSession
from billing.models import QuotaLimitRaise, SubscriptionTier, UserQuota, UserSubscription
from billing.services import QUOTA_LIMIT_RAISED, QUOTA_RESET, TIER_CHANGED
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)
PAGE = "dashboard:user"


def action_url(name: str, user) -> str:
    return reverse(f"dashboard:user_{name}", args=[user.pk])


def staff_with(*codenames: str, email: str = "staff@example.com") -> User:
    """Active staff (not superuser) holding the permissions ``app_label.codename``."""
    member = User.objects.create_user(email=email, password="pw-1234567", is_staff=True)
    for name in codenames:
        app_label, codename = name.split(".")
        member.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=member.pk)  # a fresh permission cache


ALL_PERMISSIONS = (
    "billing.change_usersubscription",
    "billing.change_userquota",
    "accounts.change_accesstoken",
    "accounts.change_user",
)


@pytest.fixture
def staff(client):
    member = staff_with(*ALL_PERMISSIONS)
    client.force_login(member)
    return member


@pytest.fixture
def target():
    user = factories.UserFactory(email="target@example.com")
    factories.quota_for(user)
    return user


def audited(event: str, *, user, actor) -> AuditLog | None:
    return AuditLog.objects.filter(event_type=event, user=user, actor=actor).first()


def _until(days: float = 3) -> str:
    return (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


# --- who may ---------------------------------------------------------------------------------
ACTIONS = [
    ("change_plan", {"tier": "pro"}),
    ("reset_quota", {}),
    ("raise_limit", {"tokens_limit": "999999999", "until": _until()}),
    ("revoke_tokens", {}),
    ("end_sessions", {}),
    ("resend_verification", {}),
    ("deactivate", {}),
    ("reactivate", {}),
]


@pytest.mark.parametrize(("name", "data"), ACTIONS)
def test_non_staff_get_404_and_nothing_changes(client, target, name, data):
    someone = factories.UserFactory()
    client.force_login(someone)
    before = AuditLog.objects.count()
    assert client.post(action_url(name, target), data).status_code == 404
    assert AuditLog.objects.count() == before


@pytest.mark.parametrize(("name", "data"), ACTIONS)
def test_staff_without_the_permission_get_403(client, target, name, data):
    client.force_login(staff_with())
    before = AuditLog.objects.count()
    assert client.post(action_url(name, target), data).status_code == 403
    assert AuditLog.objects.count() == before
    assert UserQuota.objects.get(pk=target.pk).raised_until is None


def test_get_is_refused(client, staff, target):
    assert client.get(action_url("reset_quota", target)).status_code == 405


def test_unknown_user_is_404(client, staff):
    url = reverse("dashboard:user_reset_quota", args=[987654321])
    assert client.post(url).status_code == 404


def test_staff_without_permissions_see_no_buttons(client, target):
    client.force_login(staff_with())
    body = client.get(reverse(PAGE, args=[target.pk])).content.decode()
    assert 'id="actions"' not in body
    assert "action-reset" not in body


def test_staff_with_one_permission_see_only_its_buttons(client, target):
    client.force_login(staff_with("billing.change_userquota"))
    body = client.get(reverse(PAGE, args=[target.pk])).content.decode()
    assert 'id="action-reset"' in body and 'id="action-raise"' in body
    assert 'id="action-plan"' not in body
    assert 'id="action-deactivate"' not in body
    assert 'id="action-revoke-tokens"' not in body


def test_every_button_has_a_confirmation(client, staff, target):
    body = client.get(reverse(PAGE, args=[target.pk])).content.decode()
    for form_id in (
        "action-plan",
        "action-raise",
        "action-reset",
        "action-revoke-tokens",
        "action-end-sessions",
        "action-resend-verification",
        "action-deactivate",
    ):
        start = body.index(f'id="{form_id}"')
        assert "data-confirm=" in body[start : body.index(">", start)], form_id


# --- change plan -----------------------------------------------------------------------------
def test_change_plan(client, staff, target):
    response = client.post(action_url("change_plan", target), {"tier": "pro"})
    assert response.status_code == 302
    assert response["Location"].endswith(reverse(PAGE, args=[target.pk]) + "#actions")
    current = UserSubscription.objects.get(user=target, status="active")
    assert current.tier.slug == "pro"
    pro = SubscriptionTier.objects.get(slug="pro")
    assert UserQuota.objects.get(pk=target.pk).tokens_limit == pro.monthly_token_limit
    row = audited(TIER_CHANGED, user=target, actor=staff)
    assert row is not None and row.details["to"] == "pro"
    page = client.get(response["Location"]).content.decode()
    assert "is now on pro" in page
    assert pro.name in page


@pytest.mark.parametrize("tier", ["no-such-tier", "pro\x00", "", "x" * 5000])
def test_change_plan_refuses_an_unknown_tier(client, staff, target, tier):
    response = client.post(action_url("change_plan", target), {"tier": tier})
    assert response.status_code == 400
    assert 'id="action-plan"' in response.content.decode()
    assert "errorlist" in response.content.decode()
    assert not audited(TIER_CHANGED, user=target, actor=staff)
    assert not UserSubscription.objects.filter(user=target, tier__slug="pro").exists()


# --- reset -----------------------------------------------------------------------------------
def test_reset_quota(client, staff, target):
    UserQuota.objects.filter(pk=target.pk).update(tokens_used=12345, cost_used=Decimal("1.5"))
    response = client.post(action_url("reset_quota", target))
    assert response.status_code == 302
    quota = UserQuota.objects.get(pk=target.pk)
    assert (quota.tokens_used, quota.cost_used) == (0, 0)
    assert audited(QUOTA_RESET, user=target, actor=staff)


def test_reset_from_the_quota_list_goes_back_to_it(client, staff, target):
    quota = UserQuota.objects.get(pk=target.pk)
    UserQuota.objects.filter(pk=target.pk).update(tokens_used=quota.tokens_limit)
    body = client.get(reverse("dashboard:quotas")).content.decode()
    assert action_url("reset_quota", target) in body
    response = client.post(action_url("reset_quota", target), {"back": "quotas"})
    assert response["Location"] == reverse("dashboard:quotas") + "#approaching"
    assert UserQuota.objects.get(pk=target.pk).tokens_used == 0
    assert audited(QUOTA_RESET, user=target, actor=staff)


def test_back_cannot_redirect_elsewhere(client, staff, target):
    response = client.post(action_url("reset_quota", target), {"back": "https://evil.example"})
    assert response["Location"] == reverse(PAGE, args=[target.pk]) + "#actions"


# --- raise -----------------------------------------------------------------------------------
def test_raise_limit(client, staff, target):
    quota = UserQuota.objects.get(pk=target.pk)
    until = (NOW + timedelta(days=2)).replace(second=0, microsecond=0)
    response = client.post(
        action_url("raise_limit", target),
        {
            "tokens_limit": str(quota.tokens_limit * 3),
            "cost_limit": "250.5",
            "until": until.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    quota.refresh_from_db()
    assert quota.raised_tokens_limit == quota.tokens_limit * 3
    assert quota.raised_cost_limit == Decimal("250.5")
    assert quota.raised_until == until
    raise_row = QuotaLimitRaise.objects.get(user=target)
    assert raise_row.raised_by == staff
    assert raise_row.tokens_limit_from == quota.tokens_limit
    assert raise_row.tokens_limit_to == quota.tokens_limit * 3
    assert raise_row.cost_limit_from == quota.cost_limit
    row = audited(QUOTA_LIMIT_RAISED, user=target, actor=staff)
    assert row is not None and row.details["tokens_to"] == quota.tokens_limit * 3
    page = client.get(response["Location"]).content.decode()
    assert 'id="quota-raise"' in page
    assert until.strftime("%Y-%m-%d %H:%M") in page


BAD_RAISES = [
    ({"tokens_limit": "5000000", "until": (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}),
    ({"tokens_limit": "5000000", "until": "2026-13-45T25:61"}),
    ({"tokens_limit": "5000000", "until": "20260101\x00"}),
    ({"tokens_limit": "5000000", "until": "99999-01-01T00:00"}),
    ({"tokens_limit": "5000000", "until": "9999-12-31T23:59"}),  # after the next period
    ({"tokens_limit": "5000000", "until": ""}),
    ({"tokens_limit": "-5", "until": _until()}),
    ({"tokens_limit": "10000000000000000000000", "until": _until()}),
    ({"tokens_limit": "12\x00", "until": _until()}),
    ({"cost_limit": "-1", "until": _until()}),
    ({"cost_limit": "1e400", "until": _until()}),
    ({"cost_limit": "NaN", "until": _until()}),
    ({"cost_limit": "99999999", "until": _until()}),
    ({"until": _until()}),  # no limit at all
    ({"tokens_limit": "1", "until": _until()}),  # not above the plan's
]


@pytest.mark.parametrize("data", BAD_RAISES)
def test_raise_refuses_bad_input_with_a_form_error(client, staff, target, data):
    response = client.post(action_url("raise_limit", target), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="action-raise"' in body and "errorlist" in body
    assert UserQuota.objects.get(pk=target.pk).raised_until is None
    assert not QuotaLimitRaise.objects.exists()
    assert not audited(QUOTA_LIMIT_RAISED, user=target, actor=staff)


# --- tokens, sessions, verification ----------------------------------------------------------
def test_revoke_all_tokens(client, staff, target):
    for name in ("a", "b"):
        AccessToken.objects.create(
            user=target, name=name, token_hash=name * 64, expires_at=NOW + timedelta(days=30)
        )
    other = factories.UserFactory()
    AccessToken.objects.create(
        user=other, name="c", token_hash="c" * 64, expires_at=NOW + timedelta(days=30)
    )
    response = client.post(action_url("revoke_tokens", target))
    assert response.status_code == 302
    assert not AccessToken.objects.filter(user=target, revoked_at__isnull=True).exists()
    assert AccessToken.objects.filter(user=other, revoked_at__isnull=True).count() == 1
    row = audited("tokens_revoked_by_staff", user=target, actor=staff)
    assert row is not None and row.details["revoked"] == 2


def test_sign_out_all_devices(client, staff, target):
    other_client = type(client)()
    other_client.force_login(target)
    assert UserSession.objects.filter(user=target).count() == 1
    response = client.post(action_url("end_sessions", target))
    assert response.status_code == 302
    assert not UserSession.objects.filter(user=target).exists()
    assert UserSession.objects.filter(user=staff).exists()  # the staff member stays signed in
    row = audited("sessions_ended_by_staff", user=target, actor=staff)
    assert row is not None and row.details["ended"] == 1


def test_resend_verification(client, staff, target):
    User.objects.filter(pk=target.pk).update(email_verified_at=None)
    mail.outbox.clear()
    response = client.post(action_url("resend_verification", target))
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [[target.email]]
    assert audited("verification_sent", user=target, actor=staff)


def test_resend_verification_refused_for_a_verified_address(client, staff, target):
    User.objects.filter(pk=target.pk).update(email_verified_at=NOW)
    mail.outbox.clear()
    body = client.get(reverse(PAGE, args=[target.pk])).content.decode()
    assert "action-resend-verification" not in body
    response = client.post(action_url("resend_verification", target), follow=True)
    assert "already verified" in response.content.decode()
    assert mail.outbox == []
    assert not audited("verification_sent", user=target, actor=staff)


# --- deactivate / reactivate -----------------------------------------------------------------
def test_deactivate_and_reactivate(client, staff, target):
    response = client.post(action_url("deactivate", target))
    assert response.status_code == 302
    assert not User.objects.get(pk=target.pk).is_active
    row = audited("user_deactivated", user=target, actor=staff)
    assert row is not None and row.severity == "warning"
    page = client.get(reverse(PAGE, args=[target.pk])).content.decode()
    assert 'id="action-reactivate"' in page
    assert client.post(action_url("reactivate", target)).status_code == 302
    assert User.objects.get(pk=target.pk).is_active
    assert audited("user_reactivated", user=target, actor=staff)


def test_staff_cannot_deactivate_themselves(client, staff):
    page = client.get(reverse(PAGE, args=[staff.pk])).content.decode()
    assert "action-deactivate" not in page
    assert client.post(action_url("deactivate", staff)).status_code == 403
    assert User.objects.get(pk=staff.pk).is_active
    assert not AuditLog.objects.filter(event_type="user_deactivated").exists()


def test_staff_cannot_deactivate_a_superuser(client, staff):
    boss = User.objects.create_superuser(email="boss@example.com", password="pw-1234567")
    page = client.get(reverse(PAGE, args=[boss.pk])).content.decode()
    assert "action-deactivate" not in page
    assert client.post(action_url("deactivate", boss)).status_code == 403
    assert User.objects.get(pk=boss.pk).is_active
    assert not AuditLog.objects.filter(event_type="user_deactivated").exists()


def test_a_superuser_may_deactivate_another_superuser_but_not_themselves(client):
    boss = User.objects.create_superuser(email="boss@example.com", password="pw-1234567")
    other = User.objects.create_superuser(email="other@example.com", password="pw-1234567")
    client.force_login(boss)
    assert client.post(action_url("deactivate", boss)).status_code == 403
    assert client.post(action_url("deactivate", other)).status_code == 302
    assert not User.objects.get(pk=other.pk).is_active
    assert audited("user_deactivated", user=other, actor=boss)
