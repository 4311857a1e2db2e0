"""Password reset: single use, one hour, hashed; the reset ends every session."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import audit, recovery
from accounts.models import AccessToken, AuditLog, PasswordResetToken, User, UserSession
from accounts.views import auth as views
from witchcraft.testing.factories import UserFactory

pytestmark = pytest.mark.django_db
OLD, NEW = "correct horse battery", "a brand new passphrase"


def _request_reset(client, email, **extra):
    return client.post(reverse("accounts:password_reset"), {"email": email}, **extra)


def _path(message) -> str:
    link = re.search(r"https?://\S+", message.body).group(0)
    return "/" + link.split("/", 3)[3]


def _set_password(client, path, password=NEW):
    return client.post(path, {"password": password, "password_again": password})


def test_known_and_unknown_addresses_get_the_same_answer(client):
    UserFactory(email="kim@example.com")
    known = _request_reset(client, "kim@example.com")
    unknown = _request_reset(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert views.RESET_SENT in known.text and views.RESET_SENT in unknown.text
    assert [m.to for m in mail.outbox] == [["kim@example.com"]]


def test_the_link_comes_from_site_url_not_the_host_header(client, settings):
    settings.SITE_URL = "https://witchcraft.example"
    settings.ALLOWED_HOSTS = ["*"]
    UserFactory(email="lee@example.com")
    _request_reset(client, "lee@example.com", HTTP_HOST="evil.example")
    assert "https://witchcraft.example/auth/password-reset/" in mail.outbox[0].body
    assert "evil.example" not in mail.outbox[0].body


def test_reset_sets_the_password_ends_sessions_revokes_tokens_and_is_single_use(client):
    user = UserFactory(email="mo@example.com", password=OLD)
    other_device = Client()
    other_device.post(reverse("accounts:login"), {"email": user.email, "password": OLD})
    assert UserSession.objects.filter(user=user).count() == 1
    token = AccessToken.objects.create(
        user=user,
        name="cli",
        token_hash=hashlib.sha256(b"t").hexdigest(),
        prefix="wc_t",
        expires_at=timezone.now() + timedelta(days=30),
    )
    _request_reset(client, user.email)
    path = _path(mail.outbox[0])
    assert client.get(path).status_code == 200
    response = _set_password(client, path)
    assert response.status_code == 302

    user.refresh_from_db()
    assert user.check_password(NEW)
    assert not UserSession.objects.filter(user=user).exists()
    assert other_device.get(reverse("accounts:security")).status_code == 302  # signed out
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert mail.outbox[-1].subject.endswith("Your password was changed")
    completed = AuditLog.objects.get(user=user, event_type=audit.PASSWORD_RESET_COMPLETED)
    assert completed.details == {"sessions_ended": 1, "tokens_revoked": 1}
    assert AuditLog.objects.filter(user=user, event_type=audit.PASSWORD_RESET_REQUESTED).exists()

    # Single use.
    assert client.get(path).status_code == 400
    assert _set_password(client, path, "yet another passphrase").status_code == 400
    user.refresh_from_db()
    assert user.check_password(NEW)


def test_the_link_expires_after_an_hour(client):
    user = UserFactory(email="ned@example.com", password=OLD)
    _request_reset(client, user.email)
    path = _path(mail.outbox[0])
    PasswordResetToken.objects.filter(user=user).update(
        created_at=timezone.now() - timedelta(hours=1, seconds=2),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert client.get(path).status_code == 400
    assert _set_password(client, path).status_code == 400
    user.refresh_from_db()
    assert user.check_password(OLD)


def test_only_the_hash_of_the_token_is_stored(client):
    user = UserFactory(email="ola@example.com")
    _request_reset(client, user.email)
    raw = _path(mail.outbox[0]).rstrip("/").rsplit("/", 1)[1]
    stored = PasswordResetToken.objects.get(user=user).token_hash
    assert stored == recovery.token_hash(raw)
    assert raw not in stored


def test_a_weak_new_password_is_refused_and_the_token_stays_usable(client):
    user = UserFactory(email="pat@example.com", password=OLD)
    _request_reset(client, user.email)
    path = _path(mail.outbox[0])
    response = _set_password(client, path, "1234567890")
    assert response.status_code == 200
    assert "errorlist" in response.text
    assert _set_password(client, path).status_code == 302
    assert User.objects.get(pk=user.pk).check_password(NEW)


def test_an_inactive_account_gets_no_link(client):
    UserFactory(email="quin@example.com", is_active=False)
    _request_reset(client, "quin@example.com")
    assert not mail.outbox
