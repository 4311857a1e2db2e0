"""Service credentials: staff issue them (admin, command), the raw value is shown once and only
its SHA-256 is stored, issue and revoke are audited without the secret; over the API a
credential acts only for the user ``Witchcraft-User`` names (row-level security sees that user's
rows only), never reaches the account or its tokens, and stops at once when revoked or expired.
"""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from accounts import audit, bearer, service_credentials, tokens
from accounts.models import AuditLog, ServiceCredential
from accounts.service_credentials import ServiceCredentialError
from witchcraft.platform import db_errors, rls
from witchcraft.testing import factories

pytestmark = [pytest.mark.django_db, pytest.mark.urls("accounts.tests.probe_api")]
RAW = re.compile(r"wcs_[A-Za-z0-9_-]{43}")
IDENTITY = "/api/probe/needs/usage.read"


def _staff(**fields):
    return factories.UserFactory(is_staff=True, password=None, **fields)


def _as_service(client, raw, user_id=None, path=IDENTITY, **headers):
    if user_id is not None:
        headers["HTTP_WITCHCRAFT_USER"] = str(user_id)
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}", **headers)


def _secret_nowhere(raw: str) -> None:
    """Neither the raw value nor its random part is in any credential or audit row."""
    secret = raw[service_credentials.PREFIX_LENGTH :]
    for row in ServiceCredential.objects.values():
        assert secret not in str(row)
    for row in AuditLog.objects.values("details", "target_id", "user_agent"):
        assert secret not in str(row)


# --- issuing ----------------------------------------------------------------------------------


@pytest.fixture
def admin_client():
    superuser = _staff(is_superuser=True, email="admin@example.com")
    browser = Client(HTTP_USER_AGENT="Firefox")
    browser.force_login(superuser)
    browser.superuser = superuser
    return browser


def test_staff_issue_a_credential_in_the_admin_shown_once(admin_client):
    add = "/admin/accounts/servicecredential/add/"
    assert admin_client.get(add).status_code == 200
    before = timezone.now()
    response = admin_client.post(
        add, {"name": "AI gateway", "scopes": ["usage.record", "agents"], "days": 30}
    )
    after = timezone.now()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = RAW.search(response.text).group(0)
    credential = ServiceCredential.objects.get()
    assert credential.token_hash == tokens.digest(raw)
    assert credential.prefix == raw[:10]
    assert credential.scopes == ["usage.record", "agents"]
    assert credential.created_by == admin_client.superuser
    # Thirty days from the moment of the request, whatever the machine's speed (created_at is
    # the test transaction's start, any time earlier).
    assert before + timedelta(days=30) <= credential.expires_at <= after + timedelta(days=30)
    [row] = AuditLog.objects.filter(event_type="service_credential_created")
    assert row.actor_id == admin_client.superuser.pk and row.user_id is None
    assert (row.target_type, row.target_id) == ("service_credential", str(credential.pk))
    assert row.details["name"] == "AI gateway" and row.details["prefix"] == raw[:10]
    assert row.details["scopes"] == ["usage.record", "agents"]
    assert row.user_agent == "Firefox"
    _secret_nowhere(raw)
    listing = admin_client.get("/admin/accounts/servicecredential/")
    assert listing.status_code == 200
    assert credential.prefix in listing.text and raw not in listing.text
    detail = admin_client.get(f"/admin/accounts/servicecredential/{credential.pk}/change/")
    assert detail.status_code == 200 and credential.token_hash not in detail.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scopes": ["tokens.manage"], "days": 30}, "not one of the available choices"),
        ({"scopes": ["agents"], "days": 91}, "less than or equal to 90"),
        ({"scopes": ["agents"], "days": 0}, "greater than or equal to 1"),
        ({"scopes": [], "days": 30}, "This field is required."),
    ],
)
def test_the_admin_form_refuses_bad_input_and_writes_nothing(admin_client, fields, message):
    response = admin_client.post(
        "/admin/accounts/servicecredential/add/", {"name": "gateway", **fields}
    )
    assert response.status_code == 200 and message in response.text
    assert not RAW.search(response.text)
    assert not ServiceCredential.objects.exists()


def test_staff_revoke_in_the_admin_and_the_credential_stops_at_once(admin_client, client):
    issued = factories.service_credential()
    member = factories.api_member()
    assert _as_service(client, issued.raw, member.pk).status_code == 200
    response = admin_client.post(
        "/admin/accounts/servicecredential/",
        {"action": "revoke_selected", "_selected_action": [issued.credential.pk]},
    )
    assert response.status_code == 302
    credential = ServiceCredential.objects.get()
    assert credential.revoked_at is not None
    assert credential.revoked_by == admin_client.superuser
    [row] = AuditLog.objects.filter(event_type="service_credential_revoked")
    assert row.actor_id == admin_client.superuser.pk
    assert row.details == {"name": "AI backend", "prefix": issued.raw[:10]}
    denied = _as_service(client, issued.raw, member.pk)
    assert denied.status_code == 401
    assert denied["WWW-Authenticate"].startswith("Bearer")


def test_only_active_staff_may_issue_or_revoke():
    staff, plain = _staff(), factories.UserFactory(password=None)
    former = _staff(is_active=False)
    issued = factories.service_credential(staff=staff)
    for identity in (
        rls.user_identity(plain),
        rls.user_identity(plain, actor=staff),  # a staff member impersonating a user
        rls.Identity(is_service=True, actor_id=plain.pk),  # a command naming a non-staff
        rls.Identity(is_service=True, actor_id=former.pk),
        rls.Identity(is_service=True),  # a command naming nobody
    ):
        with transaction.atomic(), rls.identity_context(identity):
            with pytest.raises(ServiceCredentialError) as refused:
                service_credentials.service_credential_issue(name="x")
            assert refused.value.code == db_errors.FORBIDDEN
            assert refused.value.message == service_credentials.NOT_STAFF
            with pytest.raises(ServiceCredentialError):
                service_credentials.service_credential_revoke(credential_id=issued.credential.pk)
    assert ServiceCredential.objects.count() == 1
    assert ServiceCredential.objects.get().revoked_at is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scopes": ["account"]}, "scopes"),
        ({"scopes": ["usage.read", "tokens.manage"]}, "scopes"),
        ({"scopes": "agents"}, "scopes"),
        ({"days": 0}, "days"),
        ({"days": 91}, "days"),
        ({"days": True}, "days"),
        ({"name": ""}, "name"),
        ({"name": "line\nbreak"}, "name"),
    ],
)
def test_issuing_refuses_bad_input(kwargs, field):
    with (
        transaction.atomic(),
        rls.service_context(actor=_staff()),
        pytest.raises(ServiceCredentialError) as refused,
    ):
        service_credentials.service_credential_issue(**{"name": "gateway", **kwargs})
    assert (refused.value.code, refused.value.field) == (db_errors.INVALID, field)
    assert not ServiceCredential.objects.exists()
    assert not AuditLog.objects.filter(event_type="service_credential_created").exists()


def test_the_command_issues_lists_and_revokes():
    staff = _staff(email="ops@example.com")
    out = StringIO()
    call_command(
        "service_credentials", "create", "--name", "gateway", "--scopes", "usage.record",
        "--days", "7", "--staff", "OPS@example.com", stdout=out,
    )  # fmt: skip
    raw = RAW.search(out.getvalue()).group(0)
    credential = ServiceCredential.objects.get()
    assert credential.token_hash == tokens.digest(raw) and credential.scopes == ["usage.record"]
    assert credential.created_by == staff
    row = AuditLog.objects.get(event_type="service_credential_created")
    assert row.actor_id == staff.pk
    _secret_nowhere(raw)

    listed = StringIO()
    call_command("service_credentials", "list", stdout=listed)
    assert "gateway" in listed.getvalue() and credential.prefix in listed.getvalue()
    assert raw not in listed.getvalue() and "active" in listed.getvalue()

    call_command(
        "service_credentials", "revoke", str(credential.pk), "--staff", staff.email, stdout=out
    )
    credential.refresh_from_db()
    assert credential.revoked_at is not None and credential.revoked_by == staff
    assert AuditLog.objects.get(event_type="service_credential_revoked").actor_id == staff.pk
    with pytest.raises(CommandError, match="No active service credential"):
        call_command("service_credentials", "revoke", str(credential.pk), "--staff", staff.email)


@pytest.mark.parametrize("email", ["nobody@example.com", "plain@example.com"])
def test_the_command_needs_an_active_staff_member(email):
    factories.UserFactory(email="plain@example.com", password=None)
    with pytest.raises(CommandError, match="No active staff member"):
        call_command("service_credentials", "create", "--name", "x", "--staff", email)
    assert not ServiceCredential.objects.exists()


# --- acting for a user over the API -----------------------------------------------------------


def test_a_credential_acts_only_for_the_named_user(client):
    issued = factories.service_credential()
    alice, bob = factories.api_member(), factories.api_member()
    for user in (alice, bob):
        response = _as_service(client, issued.raw, user.pk)
        assert response.status_code == 200, response.content
        assert response.json() == {
            "user_id": user.pk,
            "is_admin": False,
            "visible_users": [user.pk],  # row-level security: the other user's rows are hidden
            "may_record": True,
            "scopes": ["usage.read", "usage.record", "agents"],
        }


def test_may_record_follows_the_credentials_scopes(client):
    member = factories.api_member()
    reader = factories.service_credential(scopes=["usage.read", "agents"])
    response = _as_service(client, reader.raw, member.pk)
    assert response.json()["may_record"] is False
    denied = _as_service(client, reader.raw, member.pk, path="/api/probe/needs/usage.record")
    assert denied.status_code == 403
    assert denied.json()["error"] == {
        "code": "insufficient_scope",
        "message": "This service credential lacks the scope usage.record.",
        "details": {"required": "usage.record", "granted": ["usage.read", "agents"]},
    }
    assert denied["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="usage.record"'


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("get", "/api/v1/me", "insufficient_scope"),
        ("get", "/api/v1/tokens", "insufficient_scope"),
        ("post", "/api/v1/tokens", "insufficient_scope"),
        ("delete", "/api/v1/tokens/1", "insufficient_scope"),
        ("post", "/api/v1/auth/logout", "forbidden"),
        ("get", "/api/probe/needs/account", "insufficient_scope"),
        ("get", "/api/probe/needs/tokens.manage", "insufficient_scope"),
    ],
)
def test_a_credential_never_reaches_the_account_or_its_tokens(client, method, path, code):
    member = factories.api_member()
    issued = factories.service_credential()
    response = getattr(client, method)(
        path,
        {"name": "minted"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issued.raw}",
        HTTP_WITCHCRAFT_USER=str(member.pk),
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == code
    assert member.access_tokens.count() == 1 and member.access_tokens.get().revoked_at is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, bearer.USER_HEADER_MISSING),
        ("", bearer.USER_HEADER_INVALID),
        ("abc", bearer.USER_HEADER_INVALID),
        ("-1", bearer.USER_HEADER_INVALID),
        ("0", bearer.USER_HEADER_INVALID),
        ("1e3", bearer.USER_HEADER_INVALID),
        ("12\x00", bearer.USER_HEADER_INVALID),
        ("٣", bearer.USER_HEADER_INVALID),  # a digit, but not an ASCII one
        ("9" * 19, bearer.USER_HEADER_INVALID),  # past bigint
        ("9" * 400, bearer.USER_HEADER_INVALID),
    ],
)
def test_a_missing_or_malformed_user_header_is_422_naming_it(client, value, message):
    issued = factories.service_credential()
    response = _as_service(client, issued.raw, value)
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "validation_error",
        "message": message,
        "details": [{"field": "Witchcraft-User", "message": message}],
    }


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"is_active": False}, 404, bearer.NO_SUCH_USER),
        ({"deleted_at": timezone.now()}, 404, bearer.NO_SUCH_USER),
        ({"is_staff": True}, 403, bearer.STAFF_ACCOUNT),
    ],
)
def test_the_named_user_must_be_an_active_customer(client, fields, status, message):
    issued = factories.service_credential()
    user = factories.UserFactory(password=None, **fields)
    response = _as_service(client, issued.raw, user.pk)
    assert (response.status_code, response.json()["error"]["message"]) == (status, message)
    unknown = _as_service(client, issued.raw, user.pk + 1000)
    assert (unknown.status_code, unknown.json()["error"]["message"]) == (404, bearer.NO_SUCH_USER)


def test_expired_unknown_and_malformed_credentials_are_401(client):
    member = factories.api_member()
    issued = factories.service_credential()
    with connection.cursor() as cursor:  # as the table's owner: move it into the past
        cursor.execute(
            "UPDATE service_credentials SET created_at = now() - interval '2 days',"
            " expires_at = now() - interval '1 second' WHERE id = %s",
            [issued.credential.pk],
        )
    for raw in (issued.raw, "wcs_" + "x" * 43, "wcs_", "wcs_" + "x" * 500, issued.raw + "\x00"):
        response = _as_service(client, raw, member.pk)
        assert response.status_code == 401, raw
        assert response.json()["error"]["code"] == "unauthorized"


def test_the_last_use_is_recorded_at_most_once_a_minute(client):
    member = factories.api_member()
    issued = factories.service_credential()
    assert issued.credential.last_used_at is None
    _as_service(client, issued.raw, member.pk)
    first = ServiceCredential.objects.get().last_used_at
    assert first is not None
    _as_service(client, issued.raw, member.pk)
    assert ServiceCredential.objects.get().last_used_at == first


def test_a_user_token_cannot_act_for_another_user(client):
    alice, bob = factories.api_member(), factories.api_member()
    path = "/api/probe/needs/usage.read"
    response = client.get(
        path, HTTP_AUTHORIZATION=f"Bearer {alice.token}", HTTP_WITCHCRAFT_USER=str(bob.pk)
    )
    assert response.status_code == 403
    assert response.json()["error"]["message"] == bearer.NOT_A_SERVICE
    own = client.get(
        path, HTTP_AUTHORIZATION=f"Bearer {alice.token}", HTTP_WITCHCRAFT_USER=str(alice.pk)
    )
    assert own.status_code == 200 and own.json()["user_id"] == alice.pk
    assert own.json()["may_record"] is False  # a user token, USAGE_SELF_REPORTING off


def test_only_staff_read_the_credentials_under_row_level_security():
    issued = factories.service_credential()
    member = factories.UserFactory(password=None)
    with transaction.atomic(), rls.user_context(member):
        assert not ServiceCredential.objects.exists()
    with transaction.atomic(), rls.user_context(issued.credential.created_by):
        assert ServiceCredential.objects.count() == 1


def test_issue_and_revoke_are_security_warnings_in_the_trail():
    issued = factories.service_credential()
    with transaction.atomic(), rls.service_context(actor=issued.credential.created_by):
        service_credentials.service_credential_revoke(credential_id=issued.credential.pk)
    events = (audit.SERVICE_CREDENTIAL_CREATED, audit.SERVICE_CREDENTIAL_REVOKED)
    rows = AuditLog.objects.filter(event_type__in=events).order_by("id")
    assert [(r.event_type, r.severity) for r in rows] == [(e, "warning") for e in events]
    assert all(audit.severity_of(e) == "warning" for e in events)
