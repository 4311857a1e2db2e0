"""Impersonation through django-hijack's real views: who may, where it starts (/me/) and where
"Stop" lands (the 360° page), the banner, the database identity while it lasts, and the audit
trail (start, end, every write, every page viewed); staff flag changes in the admin."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.test import Client
from django.urls import include, path, reverse
from django.views.decorators.http import require_POST

from accounts import audit, impersonation, staff
from accounts.models import AuditLog, User
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

FORGED = "\r\nFAKE 2026-01-01 login_succeeded"
ACQUIRE = "/hijack/acquire/"
RELEASE = "/hijack/release/"
SECURITY = "/me/security/"
ME = "/me/"


# --- probe views, mounted beside the real URLs for this module only -------------------------


def _identity(request):
    """What the database believes about the request (read inside its RLS context)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user::text, auth.user_id(), auth.is_admin(), auth.actor_id()"
        )
        role, user_id, is_admin, actor_id = cursor.fetchone()
    return JsonResponse({"role": role, "user_id": user_id, "is_admin": is_admin, "actor": actor_id})


@require_POST
def _boom(request):
    raise RuntimeError("a write that fails")


def _page_boom(request):
    raise RuntimeError("a page that fails")


@require_POST
def _teapot(request):
    return HttpResponse(status=418)


urlpatterns = [
    path("probe/identity/", _identity),
    path("probe/boom/", _boom),
    path("probe/teapot/", _teapot),
    path("probe/page-boom/", _page_boom),
    path("", include("witchcraft.urls")),
]


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_second_factor_rule(settings):
    settings.STAFF_2FA_REQUIRED = False  # its own test below turns it on


@pytest.fixture
def staff_member(db):
    member = UserFactory(email="staff@example.com", is_staff=True)
    member.user_permissions.add(Permission.objects.get(codename="view_user"))
    return member


@pytest.fixture
def ann(db):
    return UserFactory(email="ann@example.com", full_name="Ann" + FORGED)


@pytest.fixture
def browser():
    """A client that enforces CSRF, as a browser meets it."""
    return Client(enforce_csrf_checks=True, HTTP_USER_AGENT="Firefox\r\nFAKE agent line")


def _token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def _acquire(client, target, *, token=None) -> "HttpResponse":
    token = token or _token(client.get(reverse("accounts:login")).text)
    return client.post(ACQUIRE, {"user_pk": target.pk, "csrfmiddlewaretoken": token})


def _impersonating(client, member, target):
    client.force_login(member)
    response = _acquire(client, target)
    assert response.status_code == 302, response
    return client


def _fields(form: str) -> dict[str, str]:
    """The hidden fields of a form's HTML, as a browser posts them."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def _rows(event, **filters):
    return list(AuditLog.objects.filter(event_type=event, **filters).order_by("id"))


# --- the flow ------------------------------------------------------------------------------


def test_staff_impersonate_from_the_admin_see_the_banner_and_stop(browser, staff_member, ann):
    browser.force_login(staff_member)
    change = browser.get(reverse("admin:accounts_user_change", args=[ann.pk]))
    assert change.status_code == 200
    form = re.search(r'<form method="post" action="/hijack/acquire/".*?</form>', change.text, re.S)
    assert form and f'name="user_pk" value="{ann.pk}"' in form.group(0)

    started = browser.post(ACQUIRE, _fields(form.group(0)))
    assert started.status_code == 302
    assert started["Location"] == ME  # the user's overview, not a password form

    page = browser.get(SECURITY)
    assert page.status_code == 200
    assert page.wsgi_request.user == ann
    assert "You are acting as <strong>ann@example.com</strong>" in page.text
    assert "signed in as staff@example.com" in page.text
    banner = re.search(r'<div[^>]*id="impersonation-banner".*?</div>', page.text, re.S).group(0)
    assert f'action="{RELEASE}"' in banner and "Stop" in banner
    # CSP-safe: no inline script, style or event handler (hijack's own banner has one).
    assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\son\w+=|\sstyle=", page.text)

    [row] = _rows(audit.IMPERSONATION_STARTED)
    assert (row.user_id, row.actor_id) == (ann.pk, staff_member.pk)
    assert row.details["staff_email"] == "staff@example.com"
    assert row.details["user_email"] == "ann@example.com"
    assert row.ip == "127.0.0.1"
    assert row.severity == "warning"

    stopped = browser.post(RELEASE, _fields(banner))
    assert stopped.status_code == 302
    assert stopped["Location"] == reverse("dashboard:user", args=[ann.pk])
    back = browser.get(SECURITY)
    assert back.wsgi_request.user == staff_member
    assert "impersonation-banner" not in back.text

    [row] = _rows(audit.IMPERSONATION_ENDED)
    assert (row.user_id, row.actor_id) == (ann.pk, staff_member.pk)
    assert row.details["reason"] == impersonation.REASON_RELEASED
    # Starting and stopping are their own events, not "actions under impersonation".
    assert not _rows(audit.IMPERSONATED_ACTION)


def test_act_as_from_the_360_page_lands_on_me_and_stop_lands_back_with_every_page_audited(
    browser, staff_member, ann
):
    browser.force_login(staff_member)
    user_page = reverse("dashboard:user", args=[ann.pk])
    page = browser.get(user_page)
    assert page.status_code == 200
    form = re.search(r'<form [^>]*id="impersonate-form".*?</form>', page.text, re.S).group(0)
    assert f'action="{ACQUIRE}"' in form and "Act as this user" in form
    assert 'data-confirm="Act as ann@example.com?' in form
    fields = _fields(form)
    assert (fields["user_pk"], fields["next"]) == (str(ann.pk), ME)

    started = browser.post(ACQUIRE, fields)
    assert started["Location"] == ME
    landing = browser.get(ME)
    assert landing.status_code == 200 and landing.wsgi_request.user == ann
    assert browser.get(SECURITY).status_code == 200
    assert browser.get(reverse("agents:me_sessions")).status_code == 200
    # Not page views: a redirect, a JSON answer, a HEAD.
    assert browser.get("/").status_code == 302
    assert browser.get("/probe/identity/").status_code == 200
    assert browser.head(ME).status_code == 200

    banner = re.search(r'<div[^>]*id="impersonation-banner".*?</div>', landing.text, re.S)
    stopped = browser.post(RELEASE, _fields(banner.group(0)))
    assert stopped.status_code == 302
    assert stopped["Location"] == user_page
    back = browser.get(user_page)
    assert back.status_code == 200 and back.wsgi_request.user == staff_member

    rows = list(AuditLog.objects.filter(user=ann).order_by("id"))
    assert [(r.event_type, r.details.get("path")) for r in rows] == [
        (audit.IMPERSONATION_STARTED, None),
        (impersonation.PAGE_VIEWED, ME),
        (impersonation.PAGE_VIEWED, SECURITY),
        (impersonation.PAGE_VIEWED, reverse("agents:me_sessions")),
        (audit.IMPERSONATION_ENDED, None),
    ]
    assert all((r.user_id, r.actor_id) == (ann.pk, staff_member.pk) for r in rows)
    viewed = rows[1]
    assert viewed.details == {
        "method": "GET",
        "path": ME,
        "status": 200,
        "staff_email": "staff@example.com",
    }
    assert viewed.request_id == landing["X-Request-ID"]
    assert viewed.target_id == str(ann.pk)


def test_a_page_viewed_with_a_secret_in_its_path_or_query_is_audited_without_it(
    client, staff_member, ann
):
    _impersonating(client, staff_member, ann)
    link_token = "Zx9-reset-link-token-0123456789abcdef"
    client.get(reverse("accounts:password_reset_confirm", args=[link_token]))
    client.get(f"/no/such/page/{link_token}/", {"code": "123456"})  # 404, nothing resolved
    client.get(ME, {"token": "in-the-query"})
    rows = _rows(impersonation.PAGE_VIEWED)
    assert [(r.details["path"], r.details["status"]) for r in rows] == [
        ("/auth/password-reset/[redacted]/", rows[0].details["status"]),
        ("/no/such/page/[redacted]/", 404),
        (ME, 200),
    ]
    for row in rows:
        assert link_token not in str(row.details)
        assert "in-the-query" not in str(row.details) and "123456" not in str(row.details)


def test_a_page_that_failed_is_still_audited(client, staff_member, ann):
    _impersonating(client, staff_member, ann)
    client.raise_request_exception = False
    response = client.get("/probe/page-boom/")
    assert response.status_code == 500
    [row] = _rows(impersonation.PAGE_VIEWED)
    assert (row.details["path"], row.details["status"]) == ("/probe/page-boom/", 500)
    assert (row.user_id, row.actor_id) == (ann.pk, staff_member.pk)


def test_pages_viewed_by_staff_as_themselves_are_not_audited(client, staff_member, ann):
    client.force_login(staff_member)
    assert client.get(reverse("dashboard:user", args=[ann.pk])).status_code == 200
    assert client.get(ME).status_code == 200
    assert not _rows(impersonation.PAGE_VIEWED)


def test_a_plain_user_cannot_start_from_the_360_page_form(browser, ann):
    bob = UserFactory(email="bob@example.com")
    browser.force_login(bob)
    assert browser.get(reverse("dashboard:user", args=[ann.pk])).status_code == 404
    token = _token(browser.get(ME).text)
    response = browser.post(ACQUIRE, {"user_pk": ann.pk, "next": ME, "csrfmiddlewaretoken": token})
    assert response.status_code in (403, 404)
    assert browser.get(ME).wsgi_request.user == bob
    assert not _rows(audit.IMPERSONATION_STARTED)
    assert not _rows(impersonation.PAGE_VIEWED)


def test_a_forged_next_never_leaves_the_site(browser, staff_member, ann):
    browser.force_login(staff_member)
    token = _token(browser.get(reverse("dashboard:user", args=[ann.pk])).text)
    evil = "https://evil.example/phish"
    started = browser.post(ACQUIRE, {"user_pk": ann.pk, "next": evil, "csrfmiddlewaretoken": token})
    assert started.status_code == 302 and "evil.example" not in started["Location"]
    token = _token(browser.get(ME).text)
    stopped = browser.post(RELEASE, {"next": evil, "csrfmiddlewaretoken": token})
    assert stopped.status_code == 302 and "evil.example" not in stopped["Location"]
    assert browser.get(ME).wsgi_request.user == staff_member


def test_the_admin_shows_no_impersonate_button_for_staff_accounts(client, staff_member):
    other = UserFactory(is_staff=True)
    client.force_login(staff_member)
    page = client.get(reverse("admin:accounts_user_change", args=[other.pk]))
    assert page.status_code == 200
    assert ACQUIRE not in page.text


def test_while_impersonating_the_database_sees_the_user_without_admin_powers(
    client, staff_member, ann
):
    client.force_login(staff_member)
    assert client.get("/probe/identity/").json() == {
        "role": rls.APP_ROLE,
        "user_id": staff_member.pk,
        "is_admin": True,
        "actor": None,
    }
    _impersonating(client, staff_member, ann)
    assert client.get("/probe/identity/").json() == {
        "role": rls.APP_ROLE,
        "user_id": ann.pk,
        "is_admin": False,
        "actor": staff_member.pk,
    }
    # The staff member's admin pages are out of reach inside the user's session.
    assert client.get("/admin/").status_code == 302
    assert not _rows(audit.IMPERSONATED_ACTION)  # reading is not audited


def test_every_write_under_impersonation_is_audited_with_actor_and_subject(
    browser, staff_member, ann
):
    _impersonating(browser, staff_member, ann)
    token = _token(browser.get(SECURITY).text)
    response = browser.post(reverse("accounts:verification_resend"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302

    [row] = _rows(audit.IMPERSONATED_ACTION)
    assert (row.user_id, row.actor_id) == (ann.pk, staff_member.pk)
    assert row.details == {
        "method": "POST",
        "path": "/auth/verify/resend/",
        "status": 302,
        "staff_email": "staff@example.com",
    }
    assert row.request_id == response["X-Request-ID"]
    assert row.ip == "127.0.0.1"

    # A refused write (here the CSRF check) is audited too, with its status.
    refused = browser.post(reverse("accounts:verification_resend"))
    assert refused.status_code == 403
    assert [r.details["status"] for r in _rows(audit.IMPERSONATED_ACTION)] == [302, 403]


def test_a_write_whose_transaction_rolled_back_is_still_audited(client, staff_member, ann):
    _impersonating(client, staff_member, ann)
    client.raise_request_exception = False
    assert client.post("/probe/boom/").status_code == 500
    assert client.post("/probe/teapot/").status_code == 418
    rows = _rows(audit.IMPERSONATED_ACTION)
    assert [(r.details["path"], r.details["status"]) for r in rows] == [
        ("/probe/boom/", 500),
        ("/probe/teapot/", 418),
    ]
    assert all((r.user_id, r.actor_id) == (ann.pk, staff_member.pk) for r in rows)


def test_an_audited_path_never_holds_a_link_token(client, staff_member, ann):
    _impersonating(client, staff_member, ann)
    token_in_link = "s3cret-reset-token"
    client.post(reverse("accounts:password_reset_confirm", args=[token_in_link]))
    [row] = _rows(audit.IMPERSONATED_ACTION)
    assert row.details["path"] == "/auth/password-reset/[redacted]/"
    assert token_in_link not in str(row.details)


def test_signing_out_while_impersonating_ends_it_in_the_trail(browser, staff_member, ann):
    _impersonating(browser, staff_member, ann)
    token = _token(browser.get(SECURITY).text)
    assert browser.post(reverse("accounts:logout"), {"csrfmiddlewaretoken": token}).status_code
    [logout] = _rows(audit.LOGOUT)
    assert (logout.user_id, logout.actor_id) == (ann.pk, staff_member.pk)
    [ended] = _rows(audit.IMPERSONATION_ENDED)
    assert (ended.user_id, ended.actor_id) == (ann.pk, staff_member.pk)
    assert ended.details["reason"] == impersonation.REASON_SIGNED_OUT
    [action] = _rows(audit.IMPERSONATED_ACTION)
    assert action.details["path"] == "/auth/logout/"
    assert browser.get(SECURITY).status_code == 302  # signed out altogether


@pytest.mark.parametrize("change", ["user_made_staff", "staff_demoted", "staff_deactivated"])
def test_an_impersonation_that_is_no_longer_allowed_ends_on_the_next_request(
    client, staff_member, ann, change
):
    _impersonating(client, staff_member, ann)
    if change == "user_made_staff":
        User.objects.filter(pk=ann.pk).update(is_staff=True)
    elif change == "staff_demoted":
        User.objects.filter(pk=staff_member.pk).update(is_staff=False)
    else:
        User.objects.filter(pk=staff_member.pk).update(is_active=False)

    response = client.get(SECURITY)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    [ended] = _rows(audit.IMPERSONATION_ENDED)
    assert (ended.user_id, ended.actor_id) == (ann.pk, staff_member.pk)
    assert ended.details["reason"] == impersonation.REASON_NOT_ALLOWED
    assert client.get(SECURITY).status_code == 302  # the session is gone


# --- who may -------------------------------------------------------------------------------


def test_staff_cannot_impersonate_a_superuser_another_staff_member_or_themselves(
    client, staff_member
):
    boss = User.objects.create_superuser(email="boss@example.com", password="x" * 12)
    colleague = UserFactory(is_staff=True)
    client.force_login(staff_member)
    for target in (boss, colleague, staff_member):
        assert _acquire(client, target).status_code == 403
    assert client.get("/probe/identity/").json()["user_id"] == staff_member.pk
    assert not _rows(audit.IMPERSONATION_STARTED)


def test_a_superuser_may_impersonate_a_plain_user(client, ann):
    boss = User.objects.create_superuser(email="boss@example.com", password="x" * 12)
    _impersonating(client, boss, ann)
    assert client.get("/probe/identity/").json()["actor"] == boss.pk


def test_a_plain_user_cannot_impersonate_anyone(client, ann):
    bob = UserFactory()
    client.force_login(bob)
    # Row-level security hides other accounts from a plain user: not found, or refused.
    assert _acquire(client, ann).status_code in (403, 404)
    assert client.get("/probe/identity/").json() == {
        "role": rls.APP_ROLE,
        "user_id": bob.pk,
        "is_admin": False,
        "actor": None,
    }
    assert not _rows(audit.IMPERSONATION_STARTED)


def test_an_anonymous_visitor_is_sent_to_sign_in(client, ann):
    response = _acquire(client, ann)
    assert response.status_code == 302
    assert not _rows(audit.IMPERSONATION_STARTED)


def test_impersonation_needs_a_post_with_a_csrf_token(browser, staff_member, ann):
    browser.force_login(staff_member)
    assert browser.get(ACQUIRE, {"user_pk": ann.pk}).status_code in (400, 405)
    assert browser.post(ACQUIRE, {"user_pk": ann.pk}).status_code == 403
    assert not _rows(audit.IMPERSONATION_STARTED)


def test_with_the_staff_2fa_rule_an_unverified_session_cannot_impersonate(
    client, settings, staff_member, ann
):
    settings.STAFF_2FA_REQUIRED = True
    client.force_login(staff_member)
    assert _acquire(client, ann).status_code == 403
    assert not _rows(audit.IMPERSONATION_STARTED)


# --- CR/LF in user-supplied text -----------------------------------------------------------


def _strings(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_a_name_and_a_user_agent_with_cr_lf_cannot_forge_audit_lines(browser, staff_member, ann):
    _impersonating(browser, staff_member, ann)
    token = _token(browser.get(SECURITY).text)
    browser.post(RELEASE, {"csrfmiddlewaretoken": token})

    started = _rows(audit.IMPERSONATION_STARTED)[0]
    assert started.details["user_name"] == "Ann\\x0d\\x0aFAKE 2026-01-01 login_succeeded"
    assert started.user_agent == "Firefox\\x0d\\x0aFAKE agent line"
    rows = list(AuditLog.objects.all())
    assert {audit.IMPERSONATION_STARTED, audit.IMPERSONATION_ENDED} <= {r.event_type for r in rows}
    for row in rows:
        texts = [
            row.event_type,
            row.severity,
            row.user_agent,
            row.request_id,
            row.target_type,
            row.target_id,
            *_strings(row.details),
        ]
        assert not any(ch in text for text in texts for ch in "\r\n\x00\x85\u2028"), row.pk


# --- staff flags ---------------------------------------------------------------------------


def _change_form_data(user, **changes):
    data = {"full_name": user.full_name}
    if user.is_staff:
        data["is_staff"] = "on"
    if user.is_superuser:
        data["is_superuser"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_a_superuser_changes_staff_flags_in_the_admin_and_it_is_audited(client, ann):
    boss = User.objects.create_superuser(email="boss@example.com", password="x" * 12)
    client.force_login(boss)
    url = reverse("admin:accounts_user_change", args=[ann.pk])
    response = client.post(url, _change_form_data(ann, is_staff="on", full_name="Ann Staff"))
    assert response.status_code == 302, response.context and response.context["errors"]
    ann.refresh_from_db()
    assert (ann.is_staff, ann.is_superuser, ann.full_name) == (True, False, "Ann Staff")

    [row] = _rows(audit.STAFF_FLAG_CHANGED, user=ann)
    assert (row.user_id, row.actor_id) == (ann.pk, boss.pk)
    assert row.details["old"] == {"is_staff": False, "is_superuser": False}
    assert row.details["new"] == {"is_staff": True, "is_superuser": False}
    assert row.severity == "warning"
    assert row.ip == "127.0.0.1"
    assert row.request_id == response["X-Request-ID"]

    # Saving without a flag change writes no flag event.
    client.post(url, _change_form_data(ann, full_name="Ann Again"))
    assert len(_rows(audit.STAFF_FLAG_CHANGED, user=ann)) == 1


def test_staff_who_are_not_superusers_cannot_change_the_flags(client, staff_member, ann):
    staff_member.user_permissions.add(Permission.objects.get(codename="change_user"))
    client.force_login(staff_member)
    url = reverse("admin:accounts_user_change", args=[ann.pk])
    response = client.post(url, {"full_name": "Renamed", "is_staff": "on", "is_superuser": "on"})
    assert response.status_code == 302
    ann.refresh_from_db()
    assert (ann.is_staff, ann.is_superuser, ann.full_name) == (False, False, "Renamed")
    assert not _rows(audit.STAFF_FLAG_CHANGED)


def _set_staff_as(user, target, *, actor=None):
    from django.db import transaction

    with transaction.atomic(), rls.user_context(user, actor=actor):
        return staff.user_set_staff(user_id=target.pk, is_staff=True, is_superuser=True)


def test_set_user_staff_refuses_everyone_but_a_superuser(staff_member, ann):
    with pytest.raises(staff.StaffFlagsRefused) as refused:
        _set_staff_as(staff_member, ann)
    assert refused.value.message == staff.NOT_ALLOWED
    with pytest.raises(staff.StaffFlagsRefused):
        _set_staff_as(ann, ann)
    # An impersonated context is the plain user, whoever the actor.
    boss = User.objects.create_superuser(email="boss@example.com", password="x" * 12)
    with pytest.raises(staff.StaffFlagsRefused):
        _set_staff_as(ann, ann, actor=boss)
    ann.refresh_from_db()
    assert not (ann.is_staff or ann.is_superuser)

    assert _set_staff_as(boss, ann) is True
    assert _set_staff_as(boss, ann) is False  # nothing to change
    [row] = _rows(audit.STAFF_FLAG_CHANGED, user=ann)
    assert row.details["new"] == {"is_staff": True, "is_superuser": True}


def test_a_flag_changed_by_an_operator_outside_the_app_is_audited_too(ann):
    User.objects.filter(pk=ann.pk).update(is_staff=True)  # the owner role, as in psql
    [row] = _rows(audit.STAFF_FLAG_CHANGED)
    assert row.user_id == ann.pk
    assert row.actor_id is None
    assert row.details["new"]["is_staff"] is True
