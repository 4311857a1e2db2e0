"""``/me/security/``: password change and signed-in devices, through the pages (API tokens:
test_me_tokens.py)."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import audit, devices, passwords
from accounts.models import AccessToken, AuditLog, User, UserSession
from accounts.views import security as views
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's
NEW_PASSWORD = "a brand new long passphrase"
PAGE = "/me/security/"


def _verified(**fields) -> User:
    return factories.UserFactory(email_verified_at=timezone.now(), **fields)


def _signed_in(user: User, agent: str = "Firefox on Linux", ip: str = "127.0.0.1") -> Client:
    """A browser that signed in through the login page (a real session row with its device)."""
    browser = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = browser.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return browser


def _key(browser: Client) -> str:
    return browser.cookies["sessionid"].value


def _signed_in_as(browser: Client) -> int | None:
    """The user a browser's next request is made for (None when signed out)."""
    response = browser.get(PAGE)
    return response.context["user"].pk if response.status_code == 200 else None


def _create_token(browser: Client, name: str = "laptop"):
    return browser.post(reverse("accounts:token_create"), {"name": name})


# --- the page ----------------------------------------------------------------------------------


def test_the_page_needs_a_signed_in_user(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_page_shows_every_card_and_never_a_session_key():
    user = _verified()
    browser = _signed_in(user, agent="Firefox on Linux")
    other = _signed_in(user, agent="Safari on iPhone", ip="198.51.100.9")
    page = browser.get(PAGE)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    for heading in ("Password", "Signed-in devices", "API tokens", "Recent security events"):
        assert f"<h2>{heading}</h2>" in page.text
    assert "Firefox on Linux" in page.text and "Safari on iPhone" in page.text
    assert "198.51.100.9" in page.text
    assert "This device" in page.text
    sessions = page.context["sessions"]
    assert [s["is_current"] for s in sessions] == [True, False]
    assert sessions[0]["ref"] == devices.session_reference(_key(browser))
    for key in (_key(browser), _key(other)):
        assert key not in page.text

    # The other device can be signed out by its reference; this one only by signing out.
    def revoke_url(browser):
        return reverse("accounts:session_revoke", args=[devices.session_reference(_key(browser))])

    assert revoke_url(other) in page.text
    assert revoke_url(browser) not in page.text


def test_the_page_has_a_bounded_number_of_queries(django_assert_max_num_queries):
    user = _verified()
    browser = _signed_in(user)
    for i in range(8):
        _signed_in(user, agent=f"Browser {i}")
    with django_assert_max_num_queries(20) as captured:
        page = browser.get(PAGE)
    assert page.status_code == 200
    assert len(page.context["sessions"]) == 9
    many = len(captured)
    # Twice the rows, the same queries: no query per row.
    for i in range(8, 16):
        _signed_in(user, agent=f"Browser {i}")
    with django_assert_max_num_queries(many):
        browser.get(PAGE)


def test_the_lists_are_bounded():
    user = _verified()
    browser = _signed_in(user)
    for i in range(22):
        _signed_in(user, agent=f"Browser {i}")
    factories.AuditLogFactory.create_batch(25, user=user)
    page = browser.get(PAGE)
    assert len(page.context["sessions"]) == 20
    assert len(page.context["events"]) == 20


def test_the_tokens_live_on_their_own_page():
    user = _verified()
    browser = _signed_in(user)
    _create_token(browser, name="CI runner")
    page = browser.get(PAGE)
    assert reverse("accounts:me_tokens") in page.text
    assert "CI runner" not in page.text
    assert reverse("accounts:token_create") not in page.text


def test_post_routes_refuse_get_and_requests_without_csrf():
    user = _verified()
    browser = _signed_in(user)
    routes = [
        reverse("accounts:password_change"),
        reverse("accounts:session_revoke", args=["0" * 16]),
        reverse("accounts:token_create"),
        reverse("accounts:token_revoke", args=[1]),
    ]
    for route in routes:
        assert browser.get(route).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    for route in routes:
        assert strict.post(route, {"name": "x"}).status_code == 403
    assert not AccessToken.objects.filter(user=user).exists()


# --- password ----------------------------------------------------------------------------------


def _change(browser, current=PASSWORD, new=NEW_PASSWORD, again=None):
    """The form as the page sends it by default: both "what else ends" boxes ticked."""
    return browser.post(
        reverse("accounts:password_change"),
        {
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
            "end_other_sessions": "on",
            "revoke_tokens": "on",
        },
    )


def test_a_password_change_keeps_this_device_and_signs_out_the_others():
    user = _verified(full_name="Ann Example")
    here = _signed_in(user, agent="Firefox on Linux")
    there = _signed_in(user, agent="Safari on iPhone")
    other_user = _signed_in(_verified())
    old_key = _key(here)
    mail.outbox.clear()

    response = _change(here)
    assert response.status_code == 302
    assert response["Location"] == PAGE + "#password"

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert _signed_in_as(here) == user.pk
    assert _signed_in_as(there) is None
    assert _signed_in_as(other_user) is not None  # nobody else's sessions
    [session] = UserSession.objects.filter(user=user)
    assert session.session_key == _key(here) != old_key  # a new key for this device
    assert session.user_agent == "Firefox on Linux" and session.ip == "127.0.0.1"
    assert int(session.get_decoded()[SESSION_KEY]) == user.pk

    [row] = AuditLog.objects.filter(user=user, event_type=audit.PASSWORD_CHANGED)
    assert row.details == {
        "reset_links_ended": 0,
        "sessions_ended": 1,
        "tokens_revoked": 0,
        "by_staff": False,
    }
    assert row.actor_id == user.pk and row.user_agent == "Firefox on Linux"
    assert NEW_PASSWORD not in str(row.details)
    [message] = mail.outbox
    assert message.to == [user.email]
    assert "was just changed" in message.body and "1 other device" in message.body
    assert "/auth/password-reset/" in message.body
    assert message.alternatives and "<a href=" in message.alternatives[0][0]
    assert NEW_PASSWORD not in message.body
    # The new password signs in; the old one does not.
    assert Client().login(email=user.email, password=NEW_PASSWORD)


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        ("wrong password", NEW_PASSWORD, None, passwords.CURRENT_PASSWORD_WRONG),
        (PASSWORD, NEW_PASSWORD, "something else entirely", views.PASSWORDS_DIFFER),
        (PASSWORD, "1234567890", None, "entirely numeric"),
        (PASSWORD, "short", None, "too short"),
        (PASSWORD, PASSWORD, None, passwords.PASSWORD_UNCHANGED),
        ("", "", None, "This field is required."),
    ],
)
def test_a_refused_password_change_shows_why_and_changes_nothing(current, new, again, message):
    user = _verified()
    here, there = _signed_in(user), _signed_in(user)
    mail.outbox.clear()
    response = _change(here, current=current, new=new, again=again)
    assert response.status_code == 200
    assert message in response.text
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert _signed_in_as(there) == user.pk
    assert not AuditLog.objects.filter(user=user, event_type=audit.PASSWORD_CHANGED).exists()
    assert not mail.outbox


def test_wrong_current_passwords_pause_the_form():
    user = _verified()
    browser = _signed_in(user)
    for _ in range(passwords.MAX_WRONG_ATTEMPTS):
        assert passwords.CURRENT_PASSWORD_WRONG in _change(browser, current="guess").text
    response = _change(browser)  # the right one, too late
    assert passwords.TOO_MANY_ATTEMPTS in response.text
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_the_password_cannot_be_changed_while_impersonating():
    staff = _verified(is_staff=True)
    user = _verified()
    browser = Client()
    browser.force_login(user)
    session = browser.session
    session["hijack_history"] = [str(staff.pk)]
    session.save()
    response = _change(browser)
    assert response.status_code == 302
    assert views.NOT_WHILE_IMPERSONATING in browser.get(PAGE).text
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    _create_token(browser)
    assert not AccessToken.objects.filter(user=user).exists()


# --- signed-in devices -------------------------------------------------------------------------


def test_signing_out_a_device_removes_exactly_that_one():
    user = _verified()
    here = _signed_in(user, agent="Firefox on Linux")
    phone = _signed_in(user, agent="Safari on iPhone", ip="198.51.100.9")
    tablet = _signed_in(user, agent="Chrome on Android")
    phone_key = _key(phone)
    ref = devices.session_reference(phone_key)
    response = here.post(reverse("accounts:session_revoke", args=[ref]), follow=True)
    assert devices.SESSION_NOT_FOUND not in response.text
    assert views.SESSION_REVOKED in response.text
    remaining = set(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
    assert remaining == {_key(here), _key(tablet)}
    assert _signed_in_as(phone) is None
    assert _signed_in_as(tablet) == user.pk
    [row] = AuditLog.objects.filter(user=user, event_type=audit.SESSION_REVOKED)
    assert row.target_id == ref
    assert row.details == {"ip": "198.51.100.9", "device": "Safari on iPhone"}
    assert phone_key not in str(row.details) and phone_key not in row.target_id
    # Gone is gone.
    again = here.post(reverse("accounts:session_revoke", args=[ref]), follow=True)
    assert devices.SESSION_NOT_FOUND in again.text


def test_this_device_and_other_peoples_devices_cannot_be_revoked():
    user, stranger = _verified(), _verified()
    here = _signed_in(user)
    theirs = _signed_in(stranger)
    own = here.post(
        reverse("accounts:session_revoke", args=[devices.session_reference(_key(here))]),
        follow=True,
    )
    assert devices.SESSION_IS_CURRENT in own.text
    foreign = here.post(
        reverse("accounts:session_revoke", args=[devices.session_reference(_key(theirs))]),
        follow=True,
    )
    assert devices.SESSION_NOT_FOUND in foreign.text
    for ref in ("nothex-nothex-00", "ABCDEF0123456789", "0" * 15, "0" * 17):
        response = here.post(reverse("accounts:session_revoke", args=[ref]), follow=True)
        assert response.status_code == 200
        assert devices.SESSION_NOT_FOUND in response.text
    assert _signed_in_as(here) == user.pk
    assert _signed_in_as(theirs) == stranger.pk
    assert not AuditLog.objects.filter(event_type=audit.SESSION_REVOKED).exists()


def test_the_database_and_python_agree_on_session_references():
    user = _verified()
    browser = _signed_in(user)
    [ref] = (
        UserSession.objects.filter(user=user)
        .annotate(ref=devices.SessionRef("session_key"))
        .values_list("ref", flat=True)
    )
    assert ref == devices.session_reference(_key(browser))
    assert re.fullmatch(r"[0-9a-f]{16}", ref)
