"""The admin's password form (user change page → "this form", /admin/accounts/user/<id>/password/)
sets passwords through the same service as the security page, and a staff member who is not a
superuser can neither open a superuser's password form nor edit a superuser's account."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.models import AuditLog, User
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's
NEW_PASSWORD = "a brand new long passphrase"


def _password_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/password/"


def _signed_in(user: User, agent: str = "Firefox on Linux") -> Client:
    """Signed in through the site's login page, as the admin requires."""
    browser = Client(HTTP_USER_AGENT=agent)
    response = browser.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return browser


def _superuser() -> User:
    return factories.UserFactory(is_staff=True, is_superuser=True)


def _staff_who_may_change_users() -> User:
    staff = factories.UserFactory(is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="change_user"),
        Permission.objects.get(content_type__app_label="accounts", codename="view_user"),
    )
    return staff


def _post_password(browser: Client, user: User, **extra):
    data = {
        "usable_password": "true",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        "set-password": "Change password",
    }
    data.update(extra)
    return browser.post(_password_url(user), data)


def _api_token(browser: Client) -> str:
    response = browser.post(
        reverse("accounts:token_create"), {"name": "laptop", "scopes": ["account"], "ttl_days": 7}
    )
    return response.context["issued"].raw


def _reset_link(email: str) -> str:
    mail.outbox.clear()
    Client().post(reverse("accounts:password_reset"), {"email": email})
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    return "/" + link.split("/", 3)[3]


def test_a_superuser_opens_the_form_and_sets_a_password_that_works():
    admin = _signed_in(_superuser())
    member = factories.UserFactory(email_verified_at=timezone.now())
    device = _signed_in(member)
    raw = _api_token(device)
    link = _reset_link(member.email)

    page = admin.get(_password_url(member))
    assert page.status_code == 200
    assert 'name="end_other_sessions"' in page.text and 'name="revoke_tokens"' in page.text

    response = _post_password(admin, member, end_other_sessions="on", revoke_tokens="on")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_change", args=[member.pk])

    assert Client().login(email=member.email, password=NEW_PASSWORD)
    assert not Client().login(email=member.email, password=PASSWORD)
    # The same ends as the self-service change: sessions, tokens, reset links.
    assert device.get("/me/security/").status_code == 302
    assert Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert Client().get(link).status_code == 400
    [row] = AuditLog.objects.filter(user=member, event_type=audit.PASSWORD_CHANGED)
    assert row.details == {
        "reset_links_ended": 1,
        "sessions_ended": 1,
        "tokens_revoked": 1,
        "by_staff": True,
    }
    assert row.actor_id != member.pk  # the superuser, from the database context
    assert NEW_PASSWORD not in str(row.details)
    assert mail.outbox[-1].to == [member.email]
    assert "administrator" in mail.outbox[-1].body


def test_the_admin_form_with_the_boxes_unticked_keeps_sessions_and_tokens():
    admin = _signed_in(_superuser())
    member = factories.UserFactory(email_verified_at=timezone.now())
    device = _signed_in(member)
    raw = _api_token(device)
    assert _post_password(admin, member).status_code == 302
    assert device.get("/me/security/").status_code == 200
    assert Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    [row] = AuditLog.objects.filter(user=member, event_type=audit.PASSWORD_CHANGED)
    assert row.details["sessions_ended"] == 0 and row.details["tokens_revoked"] == 0


def test_a_superuser_changing_their_own_password_in_the_admin_stays_signed_in():
    me = _superuser()
    admin, elsewhere = _signed_in(me), _signed_in(me, agent="Safari on iPhone")
    response = _post_password(admin, me, end_other_sessions="on", revoke_tokens="on")
    assert response.status_code == 302
    assert admin.get(reverse("admin:index")).status_code == 200
    assert elsewhere.get(reverse("admin:index")).status_code == 302
    me.refresh_from_db()
    assert me.check_password(NEW_PASSWORD)


def test_a_bad_password_in_the_admin_form_is_a_form_error_and_changes_nothing():
    admin = _signed_in(_superuser())
    member = factories.UserFactory()
    response = _post_password(admin, member, password1="1234567890", password2="1234567890")
    assert response.status_code == 200
    assert "errorlist" in response.text
    member.refresh_from_db()
    assert member.check_password(PASSWORD)
    assert not AuditLog.objects.filter(user=member, event_type=audit.PASSWORD_CHANGED).exists()


def test_disabling_password_sign_in_goes_through_the_service_too():
    admin = _signed_in(_superuser())
    member = factories.UserFactory()
    response = admin.post(
        _password_url(member),
        {"usable_password": "false", "unset-password": "1", "end_other_sessions": "on"},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert not member.has_usable_password()
    assert AuditLog.objects.filter(user=member, event_type=audit.PASSWORD_CHANGED).exists()


def test_staff_with_change_user_may_set_a_plain_users_password():
    staff = _signed_in(_staff_who_may_change_users())
    member = factories.UserFactory()
    assert staff.get(_password_url(member)).status_code == 200
    assert _post_password(staff, member).status_code == 302
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)


def test_staff_who_are_not_superusers_cannot_open_or_post_a_superusers_password_form():
    root = _superuser()
    staff = _signed_in(_staff_who_may_change_users())
    assert staff.get(_password_url(root)).status_code == 403
    assert _post_password(staff, root).status_code == 403
    root.refresh_from_db()
    assert root.check_password(PASSWORD)
    assert not AuditLog.objects.filter(user=root, event_type=audit.PASSWORD_CHANGED).exists()


def test_staff_who_are_not_superusers_see_a_superusers_change_page_read_only():
    root = _superuser()
    staff = _signed_in(_staff_who_may_change_users())
    url = reverse("admin:accounts_user_change", args=[root.pk])
    page = staff.get(url)
    assert page.status_code == 200
    assert 'name="full_name"' not in page.text  # nothing editable
    response = staff.post(url, {"full_name": "Taken over", "email": root.email})
    assert response.status_code == 403
    root.refresh_from_db()
    assert root.full_name != "Taken over"


def test_staff_without_change_user_cannot_open_anyones_password_form():
    staff = factories.UserFactory(is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="view_user")
    )
    member = factories.UserFactory()
    browser = _signed_in(staff)
    assert browser.get(_password_url(member)).status_code == 403
    assert _post_password(browser, member).status_code == 403
    member.refresh_from_db()
    assert member.check_password(PASSWORD)
