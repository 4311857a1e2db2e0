"""Sign-up to a verified account, sign-in and sign-out, through the pages (mail captured)."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts import audit, login
from accounts.models import AuditLog, User, UserSession
from accounts.views import auth as views

pytestmark = pytest.mark.django_db
PASSWORD = "a long and unusual passphrase"


def _comparable(page: str) -> str:
    """A page without what differs by design: the typed email, CSRF tokens, CSP nonces."""
    page = re.sub(r"[\w.+-]+@example\.com", "EMAIL", page)
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", page)
    return re.sub(r'nonce="[^"]+"', "NONCE", page)


def _link(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def _register(client, email="ann@example.com", password=PASSWORD):
    return client.post(
        reverse("accounts:register"),
        {"email": email, "full_name": "Ann Example", "password": password},
    )


def test_sign_up_verify_sign_in_sign_out(client, settings):
    settings.SITE_URL = "https://witchcraft.example"
    response = _register(client, email="Ann@Example.com")
    assert response.status_code == 200
    assert views.CHECK_INBOX in response.text
    user = User.objects.get(email="ann@example.com")
    assert user.email_verified_at is None
    assert AuditLog.objects.filter(user=user, event_type=audit.USER_CREATED).exists()

    [message] = mail.outbox
    assert message.to == ["ann@example.com"]
    link = _link(message)
    assert link.startswith("https://witchcraft.example/auth/verify/")  # SITE_URL, not Host
    assert message.alternatives and "<a href=" in message.alternatives[0][0]

    # An unverified account can sign in and sees the banner.
    response = client.post(
        reverse("accounts:login"), {"email": "ann@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    page = client.get(reverse("accounts:security"))
    assert "Please confirm your email address" in page.text
    session = UserSession.objects.get(user=user)
    assert session.ip == "127.0.0.1"

    response = client.get(link.removeprefix("https://witchcraft.example"))
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email_verified_at is not None
    assert "Please confirm your email address" not in client.get(reverse("accounts:security")).text
    assert AuditLog.objects.filter(user=user, event_type=audit.EMAIL_VERIFIED).count() == 1

    # The link is single use.
    again = client.get(link.removeprefix("https://witchcraft.example"))
    assert again.status_code == 400

    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert not UserSession.objects.filter(user=user).exists()
    assert AuditLog.objects.filter(user=user, event_type=audit.LOGOUT).exists()
    assert client.get(reverse("accounts:security")).status_code == 302


def test_logout_needs_post(client, user):
    client.force_login(user)
    assert client.get(reverse("accounts:logout")).status_code == 405


def test_registering_a_taken_email_answers_the_same_and_mails_the_owner(client):
    first = _register(client, email="bob@example.com")
    mail.outbox.clear()
    second = _register(client, email="BOB@example.com")
    assert (first.status_code, second.status_code) == (200, 200)
    assert views.CHECK_INBOX in second.text
    assert User.objects.filter(email="bob@example.com").count() == 1
    [message] = mail.outbox
    assert "already has one" in message.body


def test_a_weak_password_is_refused_with_a_form_error_and_nothing_written(client):
    response = _register(client, email="weak@example.com", password="1234567890")
    assert response.status_code == 200
    assert "too common" in response.text or "entirely numeric" in response.text
    assert not User.objects.filter(email="weak@example.com").exists()
    assert not mail.outbox


def test_wrong_password_and_unknown_email_read_the_same(client):
    _register(client, email="carol@example.com")
    wrong = client.post(
        reverse("accounts:login"), {"email": "carol@example.com", "password": "not the password"}
    )
    unknown = client.post(
        reverse("accounts:login"), {"email": "nobody@example.com", "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 200
    assert login.INVALID_CREDENTIALS in wrong.text
    assert login.INVALID_CREDENTIALS in unknown.text
    assert _comparable(wrong.text) == _comparable(unknown.text)
    failed = AuditLog.objects.filter(event_type=audit.LOGIN_FAILED)
    assert failed.count() == 2
    assert all(row.ip == "127.0.0.1" for row in failed)


def test_the_next_parameter_cannot_send_users_elsewhere(client):
    _register(client, email="dave@example.com")
    response = client.post(
        reverse("accounts:login") + "?next=https://evil.example/",
        {"email": "dave@example.com", "password": PASSWORD},
    )
    assert response["Location"] == reverse("selfservice:me")
