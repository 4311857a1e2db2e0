"""Two-factor sign-in through the pages: enrolment, the second sign-in step with an app code or a
recovery code, lockout and expiry, turning it off, and the staff rule for the admin."""

import json
import re
import time

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import audit, login, twofactor
from accounts.models import AuditLog
from accounts.views import twofactor as views
from witchcraft.testing.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's


def _code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code the user's app shows now (or ``steps_ahead`` time steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def _with_two_factor(user) -> tuple[TOTPDevice, list[str]]:
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    return device, twofactor.recovery_codes_replace(user=user)


def _verified_login(client, user, device):
    """A session signed in with both factors."""
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def _password_step(client, user, next_url=""):
    data = {"email": user.email, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("accounts:login"), data)


def _second_step(client, code, url=None):
    return client.post(url or reverse("accounts:login_2fa"), {"code": code})


def _signed_in(client) -> bool:
    return client.get(reverse("accounts:security")).status_code == 200


def _audit_text() -> str:
    rows = AuditLog.objects.values_list("event_type", "details", "user_agent", "target_id")
    return json.dumps([list(row) for row in rows])


def _shown_codes(page: str) -> list[str]:
    return re.findall(r"\b[a-z2-7]{5}-[a-z2-7]{5}\b", page)


def test_enrolment_end_to_end(client, user):
    client.force_login(user)
    assert "Set up two-factor sign-in" in client.get(reverse("accounts:security")).text

    page = client.get(reverse("accounts:two_factor_setup"))
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    secret = twofactor.totp_secret_base32(device)
    assert secret in page.text  # for typing in by hand
    # The QR code is an inline data: image (the CSP allows no outside source).
    assert 'src="data:image/svg+xml' in page.text
    assert "Content-Security-Policy" in page.headers
    # A reload shows the same device, not a new one.
    client.get(reverse("accounts:two_factor_setup"))
    assert TOTPDevice.objects.filter(user=user).count() == 1

    response = client.post(reverse("accounts:two_factor_setup"), {"code": _code(device)})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    codes = _shown_codes(response.text)
    assert len(set(codes)) == twofactor.RECOVERY_CODE_COUNT
    device.refresh_from_db()
    assert device.confirmed
    stored = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert stored == {code.replace("-", "") for code in codes}
    enabled = AuditLog.objects.get(user=user, event_type=audit.TWO_FACTOR_ENABLED)
    assert enabled.actor_id == user.pk
    assert enabled.ip == "127.0.0.1"
    # This session passed a code: it counts as verified.
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id

    # Shown once: the page afterwards manages it and shows no code.
    manage = client.get(reverse("accounts:two_factor_setup"))
    assert "Two-factor sign-in is on" in manage.text
    assert not _shown_codes(manage.text)
    assert f"Recovery codes left: {twofactor.RECOVERY_CODE_COUNT}" in manage.text
    assert "On: signing in asks for a code" in client.get(reverse("accounts:security")).text

    audit_text = _audit_text()
    for secret_text in [device.key, secret.replace(" ", ""), *codes]:
        assert secret_text.replace("-", "") not in audit_text.replace("-", "")


def test_a_wrong_setup_code_leaves_it_off(client, user):
    client.force_login(user)
    client.get(reverse("accounts:two_factor_setup"))
    response = client.post(reverse("accounts:two_factor_setup"), {"code": "000000"})
    assert response.status_code == 200
    assert twofactor.SETUP_CODE_INVALID in response.text
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert not StaticDevice.objects.filter(user=user).exists()
    assert not AuditLog.objects.filter(event_type=audit.TWO_FACTOR_ENABLED).exists()


def test_sign_in_with_an_app_code(client, user):
    device, _ = _with_two_factor(user)
    response = _password_step(client, user, next_url="/me/security/?tab=events")
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login_2fa")
    assert not _signed_in(client)  # the password alone signs nobody in
    assert client.get(reverse("accounts:login_2fa")).status_code == 200

    response = _second_step(client, _code(device))
    assert response.status_code == 302
    assert response["Location"] == "/me/security/?tab=events"
    assert _signed_in(client)
    session = client.session
    assert session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert twofactor.PENDING_USER not in session
    assert twofactor.PENDING_SINCE not in session
    success = AuditLog.objects.get(user=user, event_type=audit.LOGIN_SUCCEEDED)
    assert success.details == {"method": "totp"}
    # A used code cannot be replayed.
    client.post(reverse("accounts:logout"))
    _password_step(client, user)
    assert _second_step(client, _code(device)).status_code == 200
    assert not _signed_in(client)


def test_sign_in_with_a_recovery_code_uses_it_up(client, user):
    _, codes = _with_two_factor(user)
    _password_step(client, user)
    response = _second_step(client, f"  {codes[0].upper()} ")  # typed loosely
    assert response.status_code == 302
    assert _signed_in(client)
    assert StaticToken.objects.filter(device__user=user).count() == 9
    success = AuditLog.objects.get(user=user, event_type=audit.LOGIN_SUCCEEDED)
    assert success.details == {"method": "recovery_code"}
    used = AuditLog.objects.get(user=user, event_type=audit.RECOVERY_CODE_USED)
    assert used.details == {"recovery_codes_left": 9}
    assert used.severity == "warning"
    assert codes[0].replace("-", "") not in _audit_text()

    # The second use of the same code fails.
    client.post(reverse("accounts:logout"))
    _password_step(client, user)
    again = _second_step(client, codes[0])
    assert again.status_code == 200
    assert twofactor.CODE_INVALID in again.text
    assert not _signed_in(client)
    failed = AuditLog.objects.get(user=user, event_type=audit.LOGIN_FAILED)
    assert failed.details == {"step": "second_factor", "method": "recovery_code"}


def test_a_wrong_code_is_refused_and_counted_as_a_failed_sign_in(client, user):
    _with_two_factor(user)
    _password_step(client, user)
    response = _second_step(client, "123456")
    assert response.status_code == 200
    assert twofactor.CODE_INVALID in response.text
    assert not _signed_in(client)
    failed = AuditLog.objects.get(user=user, event_type=audit.LOGIN_FAILED)
    assert failed.details == {"step": "second_factor", "method": "totp"}
    assert failed.ip == "127.0.0.1"
    # Still pending: the form stays.
    assert client.get(reverse("accounts:login_2fa")).status_code == 200


def test_wrong_codes_lock_the_account_like_wrong_passwords(client, user):
    device, _ = _with_two_factor(user)
    _password_step(client, user)
    for _ in range(5):
        _second_step(client, "000000")
    # Locked: the right code, and then the right password, are refused.
    response = _second_step(client, _code(device))
    assert twofactor.CODE_INVALID in response.text
    assert not _signed_in(client)
    assert AuditLog.objects.filter(user=user, event_type=audit.LOGIN_LOCKED).exists()
    response = _password_step(client, user)
    assert response.status_code == 200
    assert login.INVALID_CREDENTIALS in response.text
    assert AuditLog.objects.filter(user=user, event_type=audit.LOGIN_FAILED).count() == 5


def test_the_pending_sign_in_expires_after_five_minutes(client, user):
    device, _ = _with_two_factor(user)
    _password_step(client, user)
    session = client.session
    session[twofactor.PENDING_SINCE] -= twofactor.PENDING_TTL_SECONDS + 1
    session.save()
    response = _second_step(client, _code(device))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    assert not _signed_in(client)
    assert twofactor.PENDING_USER not in client.session
    assert views.PENDING_EXPIRED in [m.message for m in get_messages(response.wsgi_request)]
    assert client.get(reverse("accounts:login_2fa"))["Location"] == reverse("accounts:login")


def test_the_second_step_without_a_pending_sign_in_goes_to_the_login_page(client):
    response = client.get(reverse("accounts:login_2fa"))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    response = _second_step(client, "123456")
    assert response["Location"] == reverse("accounts:login")
    assert not AuditLog.objects.exists()


def test_turning_it_off_needs_the_password(client, user):
    device, _ = _with_two_factor(user)
    _verified_login(client, user, device)
    url = reverse("accounts:two_factor_disable")
    assert client.get(url).status_code == 405

    response = client.post(url, {"disable-password": "not my password"})
    assert response.status_code == 200
    assert twofactor.PASSWORD_WRONG in response.text
    assert TOTPDevice.objects.filter(user=user).exists()

    response = client.post(url, {"disable-password": PASSWORD})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaticDevice.objects.filter(user=user).exists()
    assert not StaticToken.objects.filter(device__user=user).exists()
    assert AuditLog.objects.filter(user=user, event_type=audit.TWO_FACTOR_DISABLED).count() == 1
    # The password alone signs in again.
    client.post(reverse("accounts:logout"))
    assert _password_step(client, user)["Location"] == reverse("selfservice:me")


def test_staff_cannot_turn_it_off_while_it_is_required(client, settings):
    settings.STAFF_2FA_REQUIRED = True
    staff = UserFactory(is_staff=True)
    device, _ = _with_two_factor(staff)
    _verified_login(client, staff, device)
    assert twofactor.STAFF_MUST_KEEP in client.get(reverse("accounts:two_factor_setup")).text
    response = client.post(reverse("accounts:two_factor_disable"), {"disable-password": PASSWORD})
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=staff, confirmed=True).exists()
    assert not AuditLog.objects.filter(event_type=audit.TWO_FACTOR_DISABLED).exists()


def test_new_recovery_codes_need_the_password_and_replace_the_old_ones(client, user):
    device, old_codes = _with_two_factor(user)
    _verified_login(client, user, device)
    url = reverse("accounts:two_factor_recovery_codes")
    response = client.post(url, {"codes-password": "not my password"})
    assert twofactor.PASSWORD_WRONG in response.text
    assert not _shown_codes(response.text)

    response = client.post(url, {"codes-password": PASSWORD})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new_codes = _shown_codes(response.text)
    assert len(new_codes) == twofactor.RECOVERY_CODE_COUNT
    assert not set(new_codes) & set(old_codes)
    replaced = AuditLog.objects.get(user=user, event_type=audit.RECOVERY_CODES_REPLACED)
    assert replaced.details == {"recovery_codes": twofactor.RECOVERY_CODE_COUNT}
    audit_text = _audit_text()
    assert not any(code.replace("-", "") in audit_text for code in new_codes + old_codes)

    client.post(reverse("accounts:logout"))
    _password_step(client, user)
    assert _second_step(client, old_codes[0]).status_code == 200  # refused
    # django-otp throttles after a failure (one second); reset it rather than wait.
    StaticDevice.objects.filter(user=user).update(throttling_failure_count=0)
    assert _second_step(client, new_codes[0]).status_code == 302


def test_a_session_that_has_not_passed_a_code_confirms_one_before_changes(client, user):
    device, _ = _with_two_factor(user)
    client.force_login(user)  # say, signed in elsewhere before two-factor sign-in was on
    confirm = reverse("accounts:login_2fa") + "?next=%2Fme%2Fsecurity%2F2fa%2F"
    assert client.get(reverse("accounts:two_factor_setup"))["Location"] == confirm
    for url, data in [
        (reverse("accounts:two_factor_disable"), {"disable-password": PASSWORD}),
        (reverse("accounts:two_factor_recovery_codes"), {"codes-password": PASSWORD}),
    ]:
        assert client.post(url, data)["Location"] == confirm
    assert TOTPDevice.objects.filter(user=user).exists()
    assert StaticToken.objects.filter(device__user=user).count() == twofactor.RECOVERY_CODE_COUNT

    assert _second_step(client, _code(device), url=confirm)["Location"] == "/me/security/2fa/"
    assert "Two-factor sign-in is on" in client.get(reverse("accounts:two_factor_setup")).text


def test_no_changes_while_impersonating(client, user):
    client.force_login(user)
    session = client.session
    session["hijack_history"] = ["staff"]
    session.save()
    response = client.get(reverse("accounts:two_factor_setup"))
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_staff_are_sent_from_the_admin_to_set_it_up_and_get_in_after(client, settings):
    settings.STAFF_2FA_REQUIRED = True
    staff = UserFactory(is_staff=True, is_superuser=True)
    _password_step(client, staff)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:two_factor_setup") + "?next=%2Fadmin%2F"
    assert client.get("/dashboard/")["Location"].startswith(reverse("accounts:two_factor_setup"))

    setup = client.get(response["Location"])
    assert setup.status_code == 200
    device = TOTPDevice.objects.get(user=staff)
    done = client.post(response["Location"], {"code": _code(device)})
    assert 'href="/admin/"' in done.text  # "I have saved them" leads back
    assert client.get("/admin/").status_code == 200


def test_staff_with_an_app_confirm_a_code_before_the_admin(client, settings):
    settings.STAFF_2FA_REQUIRED = True
    staff = UserFactory(is_staff=True, is_superuser=True)
    device, _ = _with_two_factor(staff)
    client.force_login(staff)  # a session that never passed a code (say, after impersonating)
    response = client.get("/admin/")
    assert response["Location"] == reverse("accounts:login_2fa") + "?next=%2Fadmin%2F"
    assert client.get(response["Location"]).status_code == 200
    wrong = _second_step(client, "000000", url=response["Location"])
    assert twofactor.CODE_INVALID in wrong.text
    assert client.get("/admin/").status_code == 302
    # django-otp throttles after a failure (one second); reset it rather than wait.
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    right = _second_step(client, _code(device), url=response["Location"])
    assert right["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    # Signing out of the admin is always allowed.
    assert client.post(reverse("admin:logout")).status_code in (200, 302)


def test_without_the_rule_staff_get_in_with_a_password(client, settings):
    settings.STAFF_2FA_REQUIRED = False
    staff = UserFactory(is_staff=True, is_superuser=True)
    _password_step(client, staff)
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_page_goes_through_the_second_step(client, settings):
    settings.STAFF_2FA_REQUIRED = False  # 2FA that is on is asked for even when not required
    staff = UserFactory(is_staff=True, is_superuser=True)
    device, _ = _with_two_factor(staff)
    # The admin's own form signs nobody in: it sends people to the site's sign-in page.
    response = client.post(
        reverse("admin:login"), {"username": staff.email, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login") + "?next=%2Fadmin%2F"
    assert client.get("/admin/").status_code == 302
    outside = client.get(reverse("admin:login") + "?next=https://evil.example/")
    assert outside["Location"] == reverse("accounts:login") + "?next=%2Fadmin%2F"

    assert _password_step(client, staff, next_url="/admin/")["Location"] == reverse(
        "accounts:login_2fa"
    )
    assert client.get("/admin/").status_code == 302
    assert _second_step(client, _code(device))["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
