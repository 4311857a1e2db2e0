"""What a person does in a browser: sign up, confirm the address, sign in, see the security
page, sign out, recover the password (Chromium through Playwright, against a live server)."""

import re

import pytest
from django.core import mail

from accounts.models import User

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "a long and unusual passphrase"
NEW_PASSWORD = "another long passphrase"


def _last_link() -> str:
    return re.search(r"https?://\S+", mail.outbox[-1].body).group(0)


def test_sign_up_verify_sign_in_and_recover_a_password(page, live_server, settings):
    settings.SITE_URL = live_server.url

    page.goto(f"{live_server.url}/auth/register/")
    page.fill("input[name=email]", "walker@example.com")
    page.fill("input[name=full_name]", "Sky Walker")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your inbox")

    page.goto(f"{live_server.url}/auth/login/")
    page.fill("input[name=email]", "walker@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/me/")  # signing in leads to the user's overview
    page.click("nav.me-nav a:has-text('Security')")
    page.wait_for_url(f"{live_server.url}/me/security/")
    assert page.is_visible("text=Please confirm your email address")
    assert page.is_visible("td:has-text('login_succeeded')")
    assert page.is_visible("td:has-text('user_created')")

    page.goto(_last_link())  # the verification mail
    page.wait_for_selector("text=your email address is confirmed")
    assert not page.is_visible("text=Please confirm your email address")
    assert User.objects.get(email="walker@example.com").email_verified_at is not None

    page.click("header button:has-text('Sign out')")
    page.wait_for_selector("text=You are signed out")

    page.click("text=Forgot your password?")
    page.fill("input[name=email]", "walker@example.com")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=we sent it a link")
    page.goto(_last_link())
    page.fill("input[name=password]", NEW_PASSWORD)
    page.fill("input[name=password_again]", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Your password is changed")

    page.fill("input[name=email]", "walker@example.com")
    page.fill("input[name=password]", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/me/")
    page.goto(f"{live_server.url}/me/security/")
    assert page.is_visible("td:has-text('password_reset_completed')")


def test_a_wrong_password_shows_the_error_in_the_form(page, live_server):
    page.goto(f"{live_server.url}/auth/login/")
    page.fill("input[name=email]", "nobody@example.com")
    page.fill("input[name=password]", "whatever it is")
    page.click("main button[type=submit]")
    assert page.is_visible("[role=alert]:has-text('do not match an account')")


def test_create_an_api_token_see_it_once_and_revoke_it(page, live_server, settings):
    settings.SITE_URL = live_server.url
    page.goto(f"{live_server.url}/auth/register/")
    page.fill("input[name=email]", "tokens@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Check your inbox")
    page.goto(_last_link())  # confirm the address first: unverified accounts get no tokens
    page.fill("input[name=email]", "tokens@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/me/")
    page.click("nav.me-nav a:has-text('API tokens')")  # the tokens have their own page
    page.wait_for_url(f"{live_server.url}/me/tokens/")

    page.fill("#tokens input[name=name]", "my laptop")
    page.click("#tokens button:has-text('Create a token')")
    raw = page.inner_text("#raw-token").strip()
    assert raw.startswith("wc_")
    page.click("text=Done")
    row = page.locator("#tokens tr", has_text="my laptop")
    assert raw not in page.content()  # shown once, never again
    assert row.locator("text=active").count() == 1
    page.once("dialog", lambda dialog: dialog.accept())  # static/js/confirm.js asks first
    row.locator("button:has-text('Revoke')").click()
    page.wait_for_selector("#tokens tr:has-text('my laptop') >> text=revoked")
    page.click("nav.me-nav a:has-text('Security')")
    assert page.is_visible("td:has-text('token_revoked')")
