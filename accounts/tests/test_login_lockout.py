"""Sign-in protection: lockout per account and per IP, rate limits, hash upgrades."""

import threading

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connections
from django.test import Client
from django.urls import reverse

from accounts import audit, login
from accounts.models import AuditLog, User
from witchcraft.platform.ratelimit import TOO_MANY
from witchcraft.testing.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def _attempt(client, email, password, ip="10.0.0.1"):
    return client.post(
        reverse("accounts:login"), {"email": email, "password": password}, REMOTE_ADDR=ip
    )


def _signed_in(client) -> bool:
    return client.get(reverse("accounts:security")).status_code == 200


def test_five_failures_lock_the_account_even_from_rotating_ips(client):
    user = UserFactory(email="eve@example.com", password=PASSWORD)
    for n in range(5):
        response = _attempt(client, user.email, "wrong password", ip=f"10.0.1.{n}")
        assert login.INVALID_CREDENTIALS in response.text
    # Locked: the right password is refused too, with the same words.
    response = _attempt(client, user.email, PASSWORD, ip="10.0.2.1")
    assert response.status_code == 200
    assert login.INVALID_CREDENTIALS in response.text
    assert not _signed_in(client)
    assert AuditLog.objects.filter(user=user, event_type=audit.LOGIN_FAILED).count() == 5
    locked = AuditLog.objects.get(user=user, event_type=audit.LOGIN_LOCKED)
    assert locked.severity == "critical"


def test_the_lock_lifts_after_fifteen_minutes(client):
    user = UserFactory(email="finn@example.com", password=PASSWORD)
    for _ in range(5):
        _attempt(client, user.email, "wrong password")
    with connections["default"].cursor() as cursor:  # make the failures 16 minutes old
        cursor.execute(
            "UPDATE audit_logs SET created_at = created_at - interval '16 minutes'"
            " WHERE user_id = %s",
            [user.pk],
        )
    response = _attempt(client, user.email, PASSWORD)
    assert response.status_code == 302
    assert _signed_in(client)


def test_a_success_resets_the_failure_count(client):
    user = UserFactory(email="gail@example.com", password=PASSWORD)
    for _ in range(4):
        _attempt(client, user.email, "wrong password")
    assert _attempt(client, user.email, PASSWORD).status_code == 302
    client.post(reverse("accounts:logout"))
    for _ in range(4):
        _attempt(client, user.email, "wrong password")
    assert _attempt(client, user.email, PASSWORD).status_code == 302


def test_twenty_failures_from_one_ip_lock_that_ip(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": (1000, 60)}
    victim = UserFactory(email="hal@example.com", password=PASSWORD)
    for n in range(20):
        _attempt(client, f"guess{n}@example.com", "wrong password", ip="10.9.9.9")
    response = _attempt(client, victim.email, PASSWORD, ip="10.9.9.9")
    assert login.INVALID_CREDENTIALS in response.text
    assert not _signed_in(client)
    # Another IP is not affected.
    assert _attempt(client, victim.email, PASSWORD, ip="10.9.9.10").status_code == 302


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_twenty_parallel_wrong_passwords_never_exceed_the_limit(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": (1000, 60)}
    user = UserFactory(email="ivy@example.com", password=PASSWORD)
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def guess(n: int) -> None:
        try:
            barrier.wait()
            response = _attempt(Client(), user.email, "wrong password", ip=f"10.1.0.{n}")
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 20
    assert AuditLog.objects.filter(user=user, event_type=audit.LOGIN_FAILED).count() == 5
    assert AuditLog.objects.filter(user=user, event_type=audit.LOGIN_LOCKED).count() == 15
    assert _attempt(Client(), user.email, PASSWORD, ip="10.1.1.1").status_code == 200


def test_rate_limit_answers_429_with_retry_after(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": (3, 60)}
    for _ in range(3):
        assert _attempt(client, "x@example.com", "wrong", ip="10.5.5.5").status_code == 200
    response = _attempt(client, "x@example.com", "wrong", ip="10.5.5.5")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert TOO_MANY in response.text
    # GET (the form) is not limited, another IP is not either.
    assert client.get(reverse("accounts:login"), REMOTE_ADDR="10.5.5.5").status_code == 200
    assert _attempt(client, "x@example.com", "wrong", ip="10.5.5.6").status_code == 200


@pytest.mark.parametrize(
    ("action", "url_name", "data"),
    [
        ("register", "accounts:register", {"email": "r@example.com", "password": "x"}),
        ("password_reset", "accounts:password_reset", {"email": "r@example.com"}),
    ],
)
def test_register_and_reset_are_rate_limited(client, settings, action, url_name, data):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, action: (2, 3600)}
    for _ in range(2):
        assert client.post(reverse(url_name), data).status_code == 200
    response = client.post(reverse(url_name), data)
    assert response.status_code == 429
    assert response["Retry-After"]


def test_resending_the_verification_is_rate_limited(client, settings, user):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "verification_resend": (1, 3600)}
    client.force_login(user)
    assert client.post(reverse("accounts:verification_resend")).status_code == 302
    assert client.post(reverse("accounts:verification_resend")).status_code == 429


def test_a_bcrypt_hash_is_upgraded_to_argon2id_on_sign_in(client, settings):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    ]
    user = UserFactory(email="old@example.com", password=None)
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="bcrypt_sha256"))
    assert User.objects.get(pk=user.pk).password.startswith("bcrypt_sha256$")
    assert _attempt(client, user.email, PASSWORD).status_code == 302
    assert User.objects.get(pk=user.pk).password.startswith("argon2$argon2id$")


def test_new_passwords_are_argon2id(settings):
    """The autouse fixture swaps the hashers for speed: restore the project's own list."""
    from witchcraft import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    assert settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert make_password("x" * 12).startswith("argon2$argon2id$")
