"""``/me/export/`` (all the user's data, one JSON file) and ``/me/delete/`` (the account deleted:
personal data anonymised, billing, usage and audit history kept)."""

import json
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import audit, deletion, tokens
from accounts.models import (
    AccessToken,
    AuditLog,
    EmailVerificationToken,
    PasswordResetToken,
    User,
    UserProfile,
    UserSession,
)
from agents.models import AgentFeedback, AgentMessage, AgentSession, AgentToolCall
from billing.models import PaymentHistory, SubscriptionTier, UsageAlert, UserQuota, UserSubscription
from usage.models import AIUsageDaily, AIUsageMonthly, AIUsageRequest
from witchcraft.platform import rls
from witchcraft.selfservice import export
from witchcraft.selfservice import views as selfservice_views
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's
EXPORT = "/me/export/"
DELETE = "/me/delete/"
SECRET_ARGUMENT = "the secret launch date"


def _hex() -> str:
    return secrets.token_hex(32)


def _world_of(user: User, *, sessions: int = 1) -> dict:
    """A row in every table the export and the deletion touch, for ``user``; their ids."""
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    model = factories.catalog_model()
    tier = SubscriptionTier.objects.get(slug="pro")
    UserProfile.objects.create(
        user=user, display_name="Nick", company="Secret Co", avatar_url="https://example.com/a"
    )
    AccessToken.objects.create(
        user=user, name="cli", token_hash=_hex(), prefix="wc_abc", expires_at=now + timedelta(30)
    )
    PasswordResetToken.objects.create(
        user=user, token_hash=_hex(), expires_at=now + timedelta(hours=1)
    )
    EmailVerificationToken.objects.create(
        user=user, token_hash=_hex(), email=user.email, expires_at=now + timedelta(days=1)
    )
    factories.AuditLogFactory(user=user)
    usage = [factories.usage_request(user=user, model=model) for _ in range(3)]
    totals = {"request_count": 3, "success_count": 3, "total_tokens": 4500}
    AIUsageDaily.objects.create(
        user=user, usage_date=now.date(), provider_id=model.provider_id, model=model, **totals
    )
    AIUsageMonthly.objects.create(user=user, year=now.year, month=now.month, **totals)
    agent_sessions, messages = [], []
    for i in range(sessions):
        session = factories.AgentSessionFactory(user=user, title=f"Plans {i}")
        agent_sessions.append(session.pk)
        for position in (1, 2):
            messages.append(
                factories.AgentMessageFactory(
                    session=session, position=position, content=f"{SECRET_ARGUMENT} {i}"
                ).pk
            )
        AgentToolCall.objects.create(
            session=session,
            user=user,
            tool_name="search",
            arguments={"q": SECRET_ARGUMENT},
            result={"hits": [SECRET_ARGUMENT]},
            error="",
        )
        AgentFeedback.objects.create(session=session, user=user, rating=4, comment="so helpful")
    subscription = UserSubscription.objects.create(
        user=user,
        tier=tier,
        status="active",
        current_period_start=month_start,
        current_period_end=month_end,
    )
    factories.quota_for(user, tier.slug)
    payment = PaymentHistory.objects.create(
        user=user,
        subscription=subscription,
        amount=Decimal("20.000000"),
        status="succeeded",
        payment_provider="stripe",
        provider_payment_id=f"pi_{uuid.uuid4().hex}",
    )
    UsageAlert.objects.create(
        user=user,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=month_start,
        value_at_trigger=Decimal(80),
        limit_at_trigger=Decimal(100),
    )
    return {
        "usage": sorted(row.pk for row in usage),
        "agent_sessions": agent_sessions,
        "messages": messages,
        "subscription": subscription.pk,
        "payment": payment.pk,
    }


def _second_factor(user: User) -> None:
    """Two-factor devices (made after signing in: with them, signing in asks for a code)."""
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    static = StaticDevice.objects.create(user=user, name="recovery", confirmed=True)
    StaticToken.objects.create(device=static, token="abcdefghij")


def _user(**fields) -> User:
    return factories.UserFactory(email_verified_at=timezone.now(), **fields)


def _signed_in(user: User, agent: str = "Firefox on Linux", ip: str = "127.0.0.1") -> Client:
    browser = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = browser.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return browser


def _download(browser: Client) -> tuple[object, bytes]:
    response = browser.post(EXPORT)
    assert response.status_code == 200
    return response, b"".join(response.streaming_content)


# --- export ------------------------------------------------------------------------------------


def test_the_export_page_explains_and_links_to_deletion():
    user = _user()
    page = _signed_in(user).get(EXPORT)
    assert page.status_code == 200
    for key, _ in export.SECTIONS:
        assert f"<code>{key}</code>" in page.text
    assert reverse("accounts:me_delete") in page.text
    assert [item["label"] for item in page.context["me_nav"] if item["current"]] == ["Your data"]
    assert not AuditLog.objects.filter(user=user, event_type=export.DATA_EXPORTED).exists()


def test_the_export_needs_a_signed_in_user_and_a_csrf_token(client):
    assert client.post(EXPORT).status_code == 302
    user = _user()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(EXPORT).status_code == 403
    assert not AuditLog.objects.filter(event_type=export.DATA_EXPORTED).exists()


def test_the_export_holds_the_users_rows_and_nobody_elses():
    me, other = _user(full_name="Me Myself"), _user(full_name="Somebody Else")
    mine, theirs = _world_of(me, sessions=2), _world_of(other)
    browser = _signed_in(me, agent="Firefox on Linux", ip="198.51.100.4")
    _signed_in(other, agent="Other Browser", ip="203.0.113.99")

    response, body = _download(browser)
    assert response.streaming  # produced while sent, not held in memory
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert re.fullmatch(
        rf'attachment; filename="witchcraft-export-{me.pk}-\d{{8}}\.json"',
        response["Content-Disposition"],
    )
    data = json.loads(body)
    assert list(data)[:5] == ["format", "version", "user_id", "generated_at", "account"]
    assert data["format"] == "witchcraft-export" and data["user_id"] == me.pk
    assert [key for key, _ in export.SECTIONS] == [
        key for key in data if key not in ("format", "version", "user_id", "generated_at")
    ]

    account = data["account"]
    assert (account["id"], account["email"], account["full_name"]) == (me.pk, me.email, "Me Myself")
    assert account["email_verified"] is True and account["date_joined"]
    assert data["profile"]["company"] == "Secret Co"
    [subscription] = data["subscriptions"]
    assert subscription["id"] == mine["subscription"] and subscription["tier_slug"] == "pro"
    assert data["quota"]["tokens_limit"] == UserQuota.objects.get(user=me).tokens_limit
    [payment] = data["payments"]
    assert payment["id"] == mine["payment"] and payment["amount"] == "20.000000"
    assert len(data["usage_alerts"]) == 1
    [daily] = data["usage_daily"]
    assert daily["request_count"] == 3 and daily["model"] == "gpt-5-mini"
    assert [row["request_count"] for row in data["usage_monthly"]] == [3]
    assert sorted(row["id"] for row in data["usage_requests"]) == mine["usage"]
    assert not set(theirs["usage"]) & {row["id"] for row in data["usage_requests"]}
    assert all(row["model"] == "gpt-5-mini" for row in data["usage_requests"])
    sessions = data["agent_sessions"]
    assert [s["id"] for s in sessions] == mine["agent_sessions"]
    assert [m["id"] for s in sessions for m in s["messages"]] == mine["messages"]
    assert [m["position"] for m in sessions[0]["messages"]] == [1, 2]
    assert all(len(s["tool_calls"]) == 1 and len(s["feedback"]) == 1 for s in sessions)
    assert sessions[0]["tool_calls"][0]["arguments"] == {"q": SECRET_ARGUMENT}
    assert [t["prefix"] for t in data["access_tokens"]] == ["wc_abc"]
    assert [d["user_agent"] for d in data["devices"]] == ["Firefox on Linux"]
    assert data["devices"][0]["ip"] == "198.51.100.4"
    assert {e["event_type"] for e in data["audit_events"]} >= {
        "login_succeeded",
        export.DATA_EXPORTED,
    }

    text = body.decode()
    for foreign in (
        other.email,
        "Somebody Else",
        "Other Browser",
        "203.0.113.99",
    ):
        assert foreign not in text
    # Never a secret: password and token hashes, session keys.
    assert me.password not in text
    for token_hash in AccessToken.objects.filter(user=me).values_list("token_hash", flat=True):
        assert token_hash not in text
    for key in ("token_hash", "password", "session_key", "session_data"):
        assert f'"{key}":' not in text
    assert browser.cookies["sessionid"].value not in text


def test_the_export_is_audited_with_the_rows_per_section():
    me = _user()
    _world_of(me, sessions=2)
    browser = _signed_in(me)
    _, body = _download(browser)
    data = json.loads(body)
    [row] = AuditLog.objects.filter(user=me, event_type=export.DATA_EXPORTED)
    counts = row.details["counts"]
    assert row.actor_id == me.pk and row.user_agent == "Firefox on Linux"
    assert row.severity == "warning"
    for section in ("subscriptions", "payments", "usage_alerts", "usage_daily", "usage_monthly"):
        assert counts[section] == len(data[section]), section
    for section in ("usage_requests", "agent_sessions", "access_tokens", "devices"):
        assert counts[section] == len(data[section]), section
    assert counts["agent_messages"] == sum(len(s["messages"]) for s in data["agent_sessions"])
    assert counts["agent_tool_calls"] == 2 and counts["agent_feedback"] == 2
    assert (counts["account"], counts["profile"], counts["quota"]) == (1, 1, 1)
    # Counted before its own audit row was written: the file holds that row too.
    assert counts["audit_events"] + 1 == len(data["audit_events"])


def test_the_export_reads_a_bounded_number_of_queries_whatever_the_data():
    def queries_for(sessions: int) -> int:
        user = _user()
        _world_of(user, sessions=sessions)
        browser = _signed_in(user)
        with CaptureQueriesContext(connection) as captured:
            _download(browser)
        return len(captured)

    assert queries_for(1) == queries_for(6)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_stream_reads_in_its_own_context_after_the_request_committed():
    """As under a real server: the request's transaction is over when the file is sent."""
    me, other = _user(full_name="Me Myself"), _user(full_name="Somebody Else")
    _world_of(me)
    _world_of(other)
    browser = _signed_in(me)
    response = browser.post(EXPORT)
    assert not connection.in_atomic_block
    # The audit row is committed before a byte is sent.
    assert AuditLog.objects.filter(user=me, event_type=export.DATA_EXPORTED).exists()
    data = json.loads(b"".join(response.streaming_content))
    assert data["account"]["email"] == me.email
    assert len(data["usage_requests"]) == 3 and len(data["agent_sessions"]) == 1
    assert "Somebody Else" not in json.dumps(data)
    # Nothing of the stream's identity stays on the connection.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, coalesce(current_setting('app.user_id', true), '')")
        role, user_id = cursor.fetchone()
    assert role != rls.APP_ROLE and user_id == ""


def test_a_staff_members_hidden_details_and_name_stay_out():
    staff, me = _user(is_staff=True), _user()
    with transaction.atomic(), rls.user_context(me, actor=staff):
        audit.audit_event(
            audit.IMPERSONATED_ACTION,
            user_id=me.pk,
            details={"method": "POST", "staff_email": staff.email},
        )
    data = json.loads(_download(_signed_in(me))[1])
    [event] = [e for e in data["audit_events"] if e["event_type"] == audit.IMPERSONATED_ACTION]
    assert event["by_staff"] is True and event["details"] == {"method": "POST"}
    assert staff.email not in json.dumps(data)


def test_the_export_is_refused_while_impersonating():
    staff, user = _user(is_staff=True), _user()
    browser = Client()
    browser.force_login(user)
    session = browser.session
    session["hijack_history"] = [str(staff.pk)]
    session.save()
    response = browser.post(EXPORT)
    assert response.status_code == 302
    assert selfservice_views.EXPORT_NOT_WHILE_IMPERSONATING in browser.get(EXPORT).text
    assert not AuditLog.objects.filter(event_type=export.DATA_EXPORTED).exists()


# --- deletion ----------------------------------------------------------------------------------


def _delete(browser: Client, password: str = PASSWORD):
    return browser.post(DELETE, {"password": password})


def _snapshot(user: User) -> dict:
    """Everything a refused deletion must leave as it was."""
    user.refresh_from_db()
    return {
        "user": (user.email, user.full_name, user.password, user.is_active, user.deleted_at),
        "profile": list(UserProfile.objects.filter(user=user).values()),
        "tokens": list(AccessToken.objects.filter(user=user).values()),
        "sessions": UserSession.objects.filter(user=user).count(),
        "messages": list(AgentMessage.objects.filter(user=user).values("content")),
        "subscriptions": list(UserSubscription.objects.filter(user=user).values("status")),
        "devices": TOTPDevice.objects.filter(user=user).count(),
    }


def test_the_delete_page_says_what_happens():
    user = _user()
    page = _signed_in(user).get(DELETE)
    assert page.status_code == 200
    assert "This cannot be undone." in page.text
    assert 'name="password"' in page.text
    assert reverse("selfservice:me_export") in page.text


def test_deleting_anonymises_the_account_and_keeps_billing_usage_and_audit():
    me, other = _user(full_name="Ann Example"), _user(full_name="Bob Other")
    mine, theirs = _world_of(me), _world_of(other)
    here = _signed_in(me, agent="Firefox on Linux")
    phone = _signed_in(me, agent="Safari on iPhone")
    other_browser = _signed_in(other)
    _second_factor(me)
    _second_factor(other)
    with transaction.atomic(), rls.user_context(me):
        issued = tokens.token_issue(user_id=me.pk, name="laptop")
    old_email, payments_before = me.email, list(PaymentHistory.objects.filter(user=me).values())
    audit_before = set(AuditLog.objects.filter(user=me).values_list("id", flat=True))
    usage_before = AIUsageRequest.objects.filter(user=me).count()
    mail.outbox.clear()

    response = _delete(here)
    assert response.status_code == 200
    assert "Your account is deleted" in response.text
    assert response.cookies["sessionid"].value == ""  # signed out here

    me.refresh_from_db()
    assert me.email == f"deleted-{me.pk}@deleted.invalid"
    assert me.full_name == "" and not me.has_usable_password()
    assert me.is_active is False and me.deleted_at is not None
    profile = UserProfile.objects.get(user=me)
    assert (profile.display_name, profile.avatar_url, profile.company) == ("", "", "")
    assert (profile.timezone, profile.preferences) == ("UTC", {})
    # Signed out everywhere, tokens dead, one-time tokens and second factors gone.
    assert not UserSession.objects.filter(user=me).exists()
    assert phone.get(reverse("accounts:security")).status_code == 302
    assert not AccessToken.objects.filter(user=me, revoked_at__isnull=True).exists()
    assert tokens.token_authenticate(raw_token=issued.raw, ip="") is None
    assert not PasswordResetToken.objects.filter(user=me).exists()
    assert not EmailVerificationToken.objects.filter(user=me).exists()
    assert not TOTPDevice.objects.filter(user=me).exists()
    assert not StaticDevice.objects.filter(user=me).exists()
    # No way back in with the old credentials.
    assert not Client().login(email=old_email, password=PASSWORD)
    login = Client().post(reverse("accounts:login"), {"email": old_email, "password": PASSWORD})
    assert login.status_code == 200
    # Conversations: the rows stay (metering refers to them), their content is gone.
    assert list(AgentMessage.objects.filter(user=me).values_list("content", flat=True)) == [
        "",
        "",
    ]
    [call] = AgentToolCall.objects.filter(user=me)
    assert (call.arguments, call.result, call.error) == ({}, None, "")
    assert AgentFeedback.objects.get(user=me).comment == ""
    [session] = AgentSession.objects.filter(user=me)
    assert session.title == "" and session.is_active is False and session.ended_at is not None
    # Billing, usage and audit history kept.
    subscription = UserSubscription.objects.get(pk=mine["subscription"])
    assert subscription.status == "canceled" and subscription.canceled_at is not None
    assert list(PaymentHistory.objects.filter(user=me).values()) == payments_before
    assert AIUsageRequest.objects.filter(user=me).count() == usage_before == 3
    assert AIUsageDaily.objects.filter(user=me).exists()
    assert AIUsageMonthly.objects.filter(user=me).exists()
    assert UserQuota.objects.filter(user=me).exists()
    assert audit_before < set(AuditLog.objects.filter(user=me).values_list("id", flat=True))
    [row] = AuditLog.objects.filter(user=me, event_type=deletion.ACCOUNT_DELETED)
    assert row.actor_id == me.pk and row.severity == "warning"
    assert row.details["tokens_revoked"] == 2 and row.details["sessions_ended"] == 2
    assert row.details["subscriptions_canceled"] == 1
    assert row.details["two_factor_devices_removed"] == 2
    assert old_email not in json.dumps(row.details) and "Ann" not in json.dumps(row.details)
    # A confirmation went to the old address.
    [message] = mail.outbox
    assert message.to == [old_email] and "was deleted" in message.body
    # Nobody else was touched.
    other.refresh_from_db()
    assert other.is_active and other.full_name == "Bob Other"
    assert other_browser.get(reverse("accounts:security")).status_code == 200
    assert AgentMessage.objects.filter(user=other, content__startswith=SECRET_ARGUMENT).count() == 2
    assert UserSubscription.objects.get(pk=theirs["subscription"]).status == "active"
    assert TOTPDevice.objects.filter(user=other).exists()


def test_a_wrong_password_changes_nothing_and_counts_as_a_failed_sign_in():
    user = _user()
    _world_of(user)
    browser = _signed_in(user)
    _second_factor(user)
    before = _snapshot(user)
    response = _delete(browser, password="not my password")
    assert response.status_code == 400
    assert deletion.PASSWORD_WRONG in response.text
    assert _snapshot(user) == before
    assert not AuditLog.objects.filter(event_type=deletion.ACCOUNT_DELETED).exists()
    [failed] = AuditLog.objects.filter(user=user, event_type=audit.LOGIN_FAILED)
    assert failed.details == {"step": deletion.STEP}
    assert _delete(browser, password="").status_code == 400  # required


def test_wrong_passwords_lock_the_form_like_sign_in():
    user = _user()
    # Signed in without a login_succeeded row: in a test transaction now() never moves, and
    # failures count only after the last success.
    browser = Client()
    browser.force_login(user)
    for _ in range(5):  # settings.LOGIN_LOCKOUT_FAILURES
        assert _delete(browser, password="a guess").status_code == 400
    response = _delete(browser)  # the right one, too late
    assert response.status_code == 429
    assert deletion.TOO_MANY_ATTEMPTS in response.text
    user.refresh_from_db()
    assert user.is_active and user.deleted_at is None


def test_staff_cannot_delete_their_account_here():
    staff = _user(is_staff=True)
    browser = _signed_in(staff)
    page = browser.get(DELETE)
    assert deletion.STAFF_CANNOT_DELETE in page.text
    assert 'name="password"' not in page.text
    response = _delete(browser)
    assert response.status_code == 403
    assert deletion.STAFF_CANNOT_DELETE in response.text
    staff.refresh_from_db()
    assert staff.is_active and staff.deleted_at is None


def test_an_account_cannot_be_deleted_while_impersonated():
    staff, user = _user(is_staff=True), _user()
    browser = Client()
    browser.force_login(user)
    session = browser.session
    session["hijack_history"] = [str(staff.pk)]
    session.save()
    response = _delete(browser)
    assert response.status_code == 403
    assert deletion.NOT_WHILE_IMPERSONATING in response.text
    user.refresh_from_db()
    assert user.deleted_at is None


def test_the_delete_form_needs_a_csrf_token():
    user = _user()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(DELETE, {"password": PASSWORD}).status_code == 403
    user.refresh_from_db()
    assert user.deleted_at is None


# --- the SQL function, as the runtime role -----------------------------------------------------


def _call_delete(actor, user_id: int, *, actor_of=None):
    with (
        transaction.atomic(),
        rls.user_context(actor, actor=actor_of),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT delete_user_account(p_user_id => %s)", [user_id])
        return cursor.fetchone()[0]


@pytest.mark.parametrize("caller", ["other user", "anonymous", "admin", "impersonating staff"])
def test_the_sql_function_refuses_anyone_but_the_owner(caller):
    owner, other, staff = _user(), _user(), _user(is_staff=True)
    actor, actor_of = {
        "other user": (other, None),
        "anonymous": (AnonymousUser(), None),
        "admin": (staff, None),
        "impersonating staff": (owner, staff),
    }[caller]
    with pytest.raises(DatabaseError) as refused:
        _call_delete(actor, owner.pk, actor_of=actor_of)
    assert refused.value.__cause__.sqlstate == "42501"
    owner.refresh_from_db()
    assert owner.is_active and owner.deleted_at is None


def test_the_sql_function_works_for_the_owner_and_the_service_context_once():
    owner, operated = _user(), _user()
    summary = json.loads(_call_delete(owner, owner.pk))
    assert summary["subscriptions_canceled"] == 0
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT delete_user_account(p_user_id => %s)", [operated.pk])
    operated.refresh_from_db()
    assert operated.deleted_at is not None
    with pytest.raises(DatabaseError) as again:
        _call_delete(owner, owner.pk)
    assert again.value.__cause__.sqlstate == "22023"


def test_the_sql_function_refuses_staff_accounts_even_for_the_service():
    staff = _user(is_staff=True)
    with (
        pytest.raises(DatabaseError) as refused,
        transaction.atomic(),
        rls.service_context(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT delete_user_account(p_user_id => %s)", [staff.pk])
    assert refused.value.__cause__.sqlstate == "42501"


def test_a_squatted_placeholder_address_does_not_block_the_deletion():
    owner = _user()
    squatter = _user(email=f"deleted-{owner.pk}@deleted.invalid")
    _call_delete(owner, owner.pk)
    owner.refresh_from_db()
    assert re.fullmatch(rf"deleted-{owner.pk}-[0-9a-f]{{32}}@deleted\.invalid", owner.email)
    squatter.refresh_from_db()
    assert squatter.email == f"deleted-{owner.pk}@deleted.invalid"
