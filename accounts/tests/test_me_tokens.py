"""``/me/tokens/``: the user's API tokens (list, create: shown once, revoke), through the pages."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import audit, tokens
from accounts.models import AccessToken, AuditLog, User, UserSession
from accounts.views import security as views
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's
PAGE = "/me/tokens/"


def _verified(**fields) -> User:
    return factories.UserFactory(email_verified_at=timezone.now(), **fields)


def _signed_in(user: User, agent: str = "Firefox on Linux") -> Client:
    """A browser that signed in through the login page (a real session row)."""
    browser = Client(HTTP_USER_AGENT=agent)
    response = browser.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return browser


def _create_token(browser: Client, name: str = "laptop"):
    """As the page's form sends it: the default scopes checked, the default lifetime."""
    form = views.TokenForm()
    return browser.post(
        reverse("accounts:token_create"),
        {"name": name, "scopes": form["scopes"].initial, "ttl_days": form["ttl_days"].initial},
    )


def _raw_token(response) -> str:
    return re.search(r"wc_[A-Za-z0-9_-]{43}", response.text).group(0)


def _expiring(user, i, **fields) -> AccessToken:
    return AccessToken(
        user=user,
        name=f"t{i}",
        token_hash=f"{i:064x}",
        prefix="wc_x",
        expires_at=timezone.now() + timezone.timedelta(days=1),
        **fields,
    )


def test_the_page_needs_a_signed_in_user(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_page_is_in_the_account_navigation():
    user = _verified()
    page = _signed_in(user).get(PAGE)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    current = [item for item in page.context["me_nav"] if item["current"]]
    assert current == [{"url": PAGE, "label": "API tokens", "current": True}]
    assert reverse("accounts:security") in {item["url"] for item in page.context["me_nav"]}


def test_a_token_is_created_and_shown_once():
    user = _verified()
    browser = _signed_in(user)
    response = _create_token(browser, name="CI runner")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "it will not be shown again" in response.text
    raw = _raw_token(response)
    token = AccessToken.objects.get(user=user)
    assert token.name == "CI runner" and token.token_hash == tokens.digest(raw)
    page = browser.get(PAGE)
    assert raw not in page.text
    assert token.prefix in page.text and "CI runner" in page.text
    # Not kept in the session (a table row) nor in a cookie on the way.
    for session in UserSession.objects.filter(user=user):
        assert raw[tokens.PREFIX_LENGTH :] not in str(session.get_decoded())
    assert all(raw[tokens.PREFIX_LENGTH :] not in c.value for c in browser.cookies.values())
    assert AuditLog.objects.filter(user=user, event_type=audit.TOKEN_CREATED).count() == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "This field is required."), ("x" * 101, "at most 100"), ("a\rb", tokens.NAME_INVALID)],
)
def test_a_bad_token_name_shows_an_error_and_writes_nothing(name, message):
    user = _verified()
    browser = _signed_in(user)
    response = _create_token(browser, name=name)
    assert response.status_code == 200
    assert message in response.text
    assert not AccessToken.objects.filter(user=user).exists()
    assert not AuditLog.objects.filter(user=user, event_type=audit.TOKEN_CREATED).exists()


def test_an_unverified_account_sees_a_notice_instead_of_the_form():
    user = factories.UserFactory(email_verified_at=None)
    browser = _signed_in(user)
    page = browser.get(PAGE)
    assert tokens.EMAIL_UNVERIFIED in page.text
    assert reverse("accounts:token_create") not in page.text
    response = _create_token(browser)  # posted anyway
    assert response.status_code == 200
    assert tokens.EMAIL_UNVERIFIED in response.text
    assert not AccessToken.objects.filter(user=user).exists()


def test_too_many_tokens_is_said_on_the_form():
    user = _verified()
    browser = _signed_in(user)
    AccessToken.objects.bulk_create(_expiring(user, i) for i in range(tokens.MAX_ACTIVE_TOKENS))
    response = _create_token(browser)
    assert tokens.TOO_MANY_TOKENS in response.text
    assert AccessToken.objects.filter(user=user).count() == tokens.MAX_ACTIVE_TOKENS


def test_a_token_is_revoked_from_the_page():
    user = _verified()
    browser = _signed_in(user)
    raw = _raw_token(_create_token(browser))
    token = AccessToken.objects.get(user=user)
    response = browser.post(reverse("accounts:token_revoke", args=[token.pk]))
    assert response.status_code == 302
    assert response["Location"] == PAGE + "#tokens"
    page = browser.get(response["Location"])
    assert views.TOKEN_REVOKED in page.text
    assert page.context["tokens"][0]["status"] == "revoked"
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert tokens.token_authenticate(raw_token=raw, ip="") is None
    again = browser.post(reverse("accounts:token_revoke", args=[token.pk]), follow=True)
    assert views.TOKEN_NOT_FOUND in again.text
    assert AuditLog.objects.filter(user=user, event_type=audit.TOKEN_REVOKED).count() == 1


def test_another_user_cannot_see_or_revoke_my_token():
    me, other = _verified(), _verified()
    mine, theirs = _signed_in(me), _signed_in(other)
    _create_token(mine, name="my secret project")
    token = AccessToken.objects.get(user=me)
    page = theirs.get(PAGE)
    assert "my secret project" not in page.text and token.prefix not in page.text
    response = theirs.post(reverse("accounts:token_revoke", args=[token.pk]), follow=True)
    assert views.TOKEN_NOT_FOUND in response.text
    token.refresh_from_db()
    assert token.revoked_at is None
    for token_id in (2**40, 2**70):  # unknown, and past bigint: a plain "no such token"
        response = theirs.post(reverse("accounts:token_revoke", args=[token_id]))
        assert response.status_code == 302


def test_the_page_has_a_bounded_number_of_queries(django_assert_max_num_queries):
    user = _verified()
    browser = _signed_in(user)
    for i in range(8):
        _create_token(browser, name=f"token {i}")
    AccessToken.objects.filter(user=user, name="token 0").update(revoked_at=timezone.now())
    with django_assert_max_num_queries(15) as captured:
        page = browser.get(PAGE)
    assert len(page.context["tokens"]) == 8
    assert page.context["tokens"][-1]["status"] == "revoked"  # active ones first
    many = len(captured)
    for i in range(8, 16):
        _create_token(browser, name=f"token {i}")
    with django_assert_max_num_queries(many):
        browser.get(PAGE)


def test_the_list_is_bounded():
    user = _verified()
    browser = _signed_in(user)
    AccessToken.objects.bulk_create(
        _expiring(user, i, revoked_at=timezone.now()) for i in range(views.TOKENS_SHOWN + 10)
    )
    page = browser.get(PAGE)
    assert len(page.context["tokens"]) == views.TOKENS_SHOWN
    assert f"The {views.TOKENS_SHOWN} most recent tokens are shown" in page.text


def test_post_routes_refuse_get_and_requests_without_csrf():
    user = _verified()
    routes = [reverse("accounts:token_create"), reverse("accounts:token_revoke", args=[1])]
    browser = _signed_in(user)
    for route in routes:
        assert browser.get(route).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    for route in routes:
        assert strict.post(route, {"name": "x"}).status_code == 403
    assert not AccessToken.objects.filter(user=user).exists()


def test_tokens_cannot_be_created_while_impersonating():
    staff = _verified(is_staff=True)
    user = _verified()
    browser = Client()
    browser.force_login(user)
    session = browser.session
    session["hijack_history"] = [str(staff.pk)]
    session.save()
    response = _create_token(browser)
    assert response.status_code == 302
    assert views.NOT_WHILE_IMPERSONATING in browser.get(response["Location"]).text
    assert not AccessToken.objects.filter(user=user).exists()
