"""A password change from ``/me/security/`` ends what a thief may hold: every outstanding reset
link always; the other devices' sessions and the API tokens unless the user unticks the boxes
(both ticked by default). Through real HTTP, with real sessions, tokens and reset links."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.models import AccessToken, AuditLog, User
from accounts.views import security as views
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's
NEW_PASSWORD = "a brand new long passphrase"
PAGE = "/me/security/"
ME = "/api/v1/me"


def _verified() -> User:
    return factories.UserFactory(email_verified_at=timezone.now())


def _signed_in(user: User, agent: str = "Firefox on Linux") -> Client:
    browser = Client(HTTP_USER_AGENT=agent)
    response = browser.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return browser


def _signed_in_as(browser: Client) -> int | None:
    response = browser.get(PAGE)
    return response.context["user"].pk if response.status_code == 200 else None


def _token(browser: Client) -> str:
    """A new API token made on the tokens page (its raw value, shown once)."""
    response = browser.post(
        reverse("accounts:token_create"), {"name": "laptop", "scopes": ["account"], "ttl_days": 7}
    )
    assert response.status_code == 200, response.text
    return response.context["issued"].raw


def _api(raw: str) -> int:
    return Client().get(ME, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code


def _reset_link(email: str) -> str:
    """The path of a fresh reset link mailed to ``email``."""
    mail.outbox.clear()
    Client().post(reverse("accounts:password_reset"), {"email": email})
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    return "/" + link.split("/", 3)[3]


def _change(browser: Client, **boxes) -> object:
    data = {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
    }
    data.update({name: "on" for name, ticked in boxes.items() if ticked})
    return browser.post(reverse("accounts:password_change"), data)


def _all_ticked() -> dict[str, bool]:
    return {"end_other_sessions": True, "revoke_tokens": True}


def test_the_form_offers_both_boxes_ticked_by_default():
    browser = _signed_in(_verified())
    page = browser.get(PAGE).text
    for name in ("end_other_sessions", "revoke_tokens"):
        box = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
        assert box, name
        assert 'type="checkbox"' in box.group(0) and "checked" in box.group(0)
    assert views.END_OTHER_SESSIONS_LABEL in page
    assert views.REVOKE_TOKENS_LABEL in page


def test_a_change_ends_reset_links_other_sessions_and_tokens_and_says_so():
    user = _verified()
    here, there = _signed_in(user), _signed_in(user, agent="Safari on iPhone")
    raw = _token(here)
    links = [_reset_link(user.email), _reset_link(user.email)]
    assert _api(raw) == 200
    assert all(Client().get(link).status_code == 200 for link in links)
    assert _signed_in_as(there) == user.pk

    response = _change(here, **_all_ticked())
    assert response.status_code == 302

    assert _api(raw) == 401
    assert [Client().get(link).status_code for link in links] == [400, 400]
    assert _signed_in_as(there) is None
    assert _signed_in_as(here) == user.pk  # this device stays signed in
    [row] = AuditLog.objects.filter(user=user, event_type=audit.PASSWORD_CHANGED)
    assert row.details == {
        "reset_links_ended": 2,
        "sessions_ended": 1,
        "tokens_revoked": 1,
        "by_staff": False,
    }
    assert row.actor_id == user.pk
    assert NEW_PASSWORD not in str(row.details) and PASSWORD not in str(row.details)
    assert raw not in str(row.details)
    notice = mail.outbox[-1]
    assert notice.to == [user.email]
    assert "1 other device" in notice.body and "1 API token" in notice.body
    assert NEW_PASSWORD not in notice.body
    # The new password signs in.
    assert Client().login(email=user.email, password=NEW_PASSWORD)


def test_with_the_boxes_unticked_sessions_and_tokens_survive_but_reset_links_do_not():
    user = _verified()
    here, there = _signed_in(user), _signed_in(user, agent="Safari on iPhone")
    raw = _token(here)
    link = _reset_link(user.email)

    response = _change(here, end_other_sessions=False, revoke_tokens=False)
    assert response.status_code == 302

    assert _api(raw) == 200
    assert _signed_in_as(there) == user.pk
    assert Client().get(link).status_code == 400  # never optional
    [row] = AuditLog.objects.filter(user=user, event_type=audit.PASSWORD_CHANGED)
    assert row.details == {
        "reset_links_ended": 1,
        "sessions_ended": 0,
        "tokens_revoked": 0,
        "by_staff": False,
    }
    assert "still work" in mail.outbox[-1].body
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_one_box_without_the_other():
    user = _verified()
    here, there = _signed_in(user), _signed_in(user, agent="Safari on iPhone")
    raw = _token(here)
    _change(here, end_other_sessions=False, revoke_tokens=True)
    assert _api(raw) == 401
    assert _signed_in_as(there) == user.pk


def test_a_refused_change_ends_nothing():
    user = _verified()
    here, there = _signed_in(user), _signed_in(user, agent="Safari on iPhone")
    raw = _token(here)
    link = _reset_link(user.email)
    response = here.post(
        reverse("accounts:password_change"),
        {
            "current_password": "not my password",
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
            **{name: "on" for name in _all_ticked()},
        },
    )
    assert response.status_code == 200
    assert _api(raw) == 200
    assert _signed_in_as(there) == user.pk
    assert Client().get(link).status_code == 200
    assert not AuditLog.objects.filter(user=user, event_type=audit.PASSWORD_CHANGED).exists()


def test_someone_elses_tokens_sessions_and_links_are_untouched():
    user, other = _verified(), _verified()
    here = _signed_in(user)
    elsewhere = _signed_in(other)
    raw = _token(elsewhere)
    link = _reset_link(other.email)
    _change(here, **_all_ticked())
    assert _api(raw) == 200
    assert _signed_in_as(elsewhere) == other.pk
    assert Client().get(link).status_code == 200
    assert AccessToken.objects.filter(user=other, revoked_at__isnull=True).count() == 1
