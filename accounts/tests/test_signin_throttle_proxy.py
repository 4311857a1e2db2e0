"""Sign-in throttling behind a proxy: the per-address limits count the real client.

Reported: behind a proxy on the same machine every client had the proxy's address, so twenty
wrong passwords for made-up addresses locked sign-in for every user for 15 minutes. With the
proxy named in TRUSTED_PROXIES, each forwarded client is counted on its own; a client that
reaches the site directly cannot pick its address by sending X-Forwarded-For.
"""

import pytest
from django.urls import reverse
from django.utils.timezone import now

from accounts import audit, login
from accounts.models import AuditLog
from witchcraft.platform import clients
from witchcraft.testing.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"
PROXY = "127.0.0.1"
ATTACKER = "203.0.113.66"
VICTIM = "198.51.100.7"


@pytest.fixture
def behind_local_proxy(settings):
    settings.TRUSTED_PROXIES = clients.trusted_proxies("127.0.0.1,::1")
    # The cache's per-address limit (30 a minute) would stop the flood before the lockout
    # does; here the lockout counted in audit_logs is under test.
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": (1000, 60)}


def _attempt(client, email, password, *, remote=PROXY, forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(reverse("accounts:login"), {"email": email, "password": password}, **extra)


def _flood(client, *, remote=PROXY, forwarded=ATTACKER, count=25):
    for n in range(count):
        response = _attempt(
            client, f"made-up-{n}@example.com", "wrong", remote=remote, forwarded=forwarded
        )
        assert login.INVALID_CREDENTIALS in response.text


def test_a_flood_through_the_proxy_does_not_lock_out_another_forwarded_client(
    client, django_user_model, behind_local_proxy
):
    victim = UserFactory(email="vera@example.com", password=PASSWORD)
    _flood(client)
    # The attacker's own address is locked, whoever it names ...
    assert AuditLog.objects.filter(event_type=audit.LOGIN_LOCKED, ip=ATTACKER).exists()
    # ... and the failures were counted against it, never against the proxy.
    assert not AuditLog.objects.filter(ip=PROXY).exists()
    response = _attempt(client, victim.email, PASSWORD, forwarded=VICTIM)
    assert response.status_code == 302
    succeeded = AuditLog.objects.get(user=victim, event_type=audit.LOGIN_SUCCEEDED)
    assert succeeded.ip == VICTIM


def test_the_flooding_client_itself_is_locked_even_with_a_right_password(
    client, behind_local_proxy
):
    user = UserFactory(email="walt@example.com", password=PASSWORD)
    _flood(client)
    response = _attempt(client, user.email, PASSWORD, forwarded=ATTACKER)
    assert login.INVALID_CREDENTIALS in response.text


def test_a_made_up_forwarded_chain_does_not_move_the_attacker_elsewhere(client, behind_local_proxy):
    """The proxy appends the address it saw: what the client wrote to the left is ignored, so
    rotating made-up X-Forwarded-For values neither escapes the lock nor blames others."""
    victim = UserFactory(email="xena@example.com", password=PASSWORD)
    for n in range(25):
        _attempt(
            client,
            f"made-up-{n}@example.com",
            "wrong",
            forwarded=f"{VICTIM}, 10.0.{n}.1, {ATTACKER}",
        )
    assert not AuditLog.objects.filter(ip=VICTIM).exists()
    response = _attempt(client, "nobody@example.com", "wrong", forwarded=f"10.9.9.9, {ATTACKER}")
    assert AuditLog.objects.filter(ip=ATTACKER, event_type=audit.LOGIN_LOCKED).exists()
    assert login.INVALID_CREDENTIALS in response.text
    assert _attempt(client, victim.email, PASSWORD, forwarded=VICTIM).status_code == 302


def test_a_direct_client_cannot_dodge_its_lock_with_x_forwarded_for(client, behind_local_proxy):
    """Not through a trusted proxy: X-Forwarded-For is the client's own claim, ignored."""
    user = UserFactory(email="yuri@example.com", password=PASSWORD)
    for n in range(25):
        made_up = f"made-up-{n}@example.com"
        _attempt(client, made_up, "wrong", remote=ATTACKER, forwarded=f"10.1.{n}.1")
    assert set(AuditLog.objects.values_list("ip", flat=True)) == {ATTACKER}
    response = _attempt(client, user.email, PASSWORD, remote=ATTACKER, forwarded=VICTIM)
    assert login.INVALID_CREDENTIALS in response.text
    # A different direct client signs in.
    assert _attempt(client, user.email, PASSWORD, remote=VICTIM).status_code == 302


def test_the_cache_rate_limit_counts_each_forwarded_client(client, settings, behind_local_proxy):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": (3, 60)}
    for _ in range(3):
        assert _attempt(client, "x@example.com", "wrong", forwarded=ATTACKER).status_code == 200
    assert _attempt(client, "x@example.com", "wrong", forwarded=ATTACKER).status_code == 429
    victim = UserFactory(email="zoe@example.com", password=PASSWORD)
    assert _attempt(client, victim.email, PASSWORD, forwarded=VICTIM).status_code == 302


def test_the_api_sign_in_limits_each_forwarded_client_too(client, settings, behind_local_proxy):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": (3, 60)}
    victim = UserFactory(email="abe@example.com", password=PASSWORD, email_verified_at=now())

    def api_login(email, password, forwarded):
        return client.post(
            "/api/v1/auth/login",
            {"email": email, "password": password, "token_name": "cli"},
            content_type="application/json",
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    for n in range(3):
        assert api_login(f"made-up-{n}@example.com", "wrong", ATTACKER).status_code == 401
    refused = api_login("made-up@example.com", "wrong", ATTACKER)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert api_login(victim.email, PASSWORD, VICTIM).status_code == 201
