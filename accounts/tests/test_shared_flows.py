"""Flows shared by the page and the API: each is one service function, so a page and the API
(or, where there is no endpoint, the flow called as an endpoint would call it) leave the same
rows and send the same mails."""

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import audit, deletion, registration
from accounts.models import AuditLog, User
from accounts.views import security
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's
AGENT = "Flow tester"


def _events(user: User) -> list[str]:
    return sorted(AuditLog.objects.filter(user=user).values_list("event_type", flat=True))


def _mails() -> list[tuple[list[str], str]]:
    """The mails sent since the last call, (to, subject), and forget them."""
    sent = [(message.to, message.subject) for message in mail.outbox]
    mail.outbox.clear()
    return sent


def _page_register(email: str):
    return Client().post(
        reverse("accounts:register"), {"email": email, "full_name": "", "password": PASSWORD}
    )


def _api_register(email: str):
    return Client().post(
        "/api/v1/auth/register",
        {"email": email, "password": PASSWORD},
        content_type="application/json",
    )


def test_registration_from_the_page_and_the_api_writes_and_mails_the_same():
    assert _page_register("page@example.com").status_code == 200
    page_new = _mails()
    assert _api_register("api@example.com").status_code == 202
    api_new = _mails()
    page_user = User.objects.get(email="page@example.com")
    api_user = User.objects.get(email="api@example.com")
    assert _events(page_user) == _events(api_user) and audit.USER_CREATED in _events(api_user)
    assert page_new == [(["page@example.com"], "[Witchcraft] Confirm your email address")]
    assert api_new == [(["api@example.com"], "[Witchcraft] Confirm your email address")]

    # A taken address: the owner is told by mail, from either door, and nothing else happens.
    before = AuditLog.objects.count()
    assert _page_register("api@example.com").status_code == 200
    page_taken = _mails()
    assert _api_register("page@example.com").status_code == 202
    api_taken = _mails()
    notice = "[Witchcraft] Someone tried to create an account with your address"
    assert page_taken == [(["api@example.com"], notice)]
    assert api_taken == [(["page@example.com"], notice)]
    assert AuditLog.objects.count() == before
    assert User.objects.filter(email__in=["page@example.com", "api@example.com"]).count() == 2


def test_the_registration_flow_returns_none_for_a_taken_address():
    with transaction.atomic():
        user_id = registration.registration_submit(email="flow@example.com", password=PASSWORD)
    assert User.objects.get(pk=user_id).email == "flow@example.com"
    with transaction.atomic():
        assert registration.registration_submit(email="flow@example.com", password=PASSWORD) is None


def _token_created(user: User) -> tuple:
    row = AuditLog.objects.get(user=user, event_type=audit.TOKEN_CREATED)
    return row.target_type, sorted(row.details), row.details["scopes"], row.user_agent


def test_a_token_from_the_page_and_from_the_api_is_issued_and_audited_alike():
    page_user = factories.UserFactory(email_verified_at=timezone.now())
    api_user = factories.UserFactory(email_verified_at=timezone.now())
    browser = Client(HTTP_USER_AGENT=AGENT)
    signed_in = browser.post(
        reverse("accounts:login"), {"email": page_user.email, "password": PASSWORD}
    )
    assert signed_in.status_code == 302
    form = security.TokenForm()
    page = browser.post(
        reverse("accounts:token_create"),
        {"name": "laptop", "scopes": form["scopes"].initial, "ttl_days": form["ttl_days"].initial},
    )
    assert page.status_code == 200
    api = Client(HTTP_USER_AGENT=AGENT).post(
        "/api/v1/auth/login",
        {"email": api_user.email, "password": PASSWORD, "token_name": "laptop"},
        content_type="application/json",
    )
    assert api.status_code == 201
    assert _token_created(page_user) == _token_created(api_user)
    assert _token_created(api_user)[1] == ["expires_at", "name", "prefix", "scopes"]
    page_token = page_user.access_tokens.get()
    api_token = api_user.access_tokens.get()
    assert (page_token.name, page_token.scopes) == (api_token.name, api_token.scopes)
    assert abs(page_token.expires_at - api_token.expires_at) < timezone.timedelta(minutes=1)


def _deleted(user: User) -> tuple:
    row = AuditLog.objects.get(user=user, event_type=deletion.ACCOUNT_DELETED)
    user.refresh_from_db()
    return sorted(row.details), user.is_active, user.deleted_at is not None


def test_deleting_from_the_page_and_through_the_flow_deletes_and_mails_alike():
    """No endpoint deletes an account (yet): the flow is called as one would call it."""
    page_user = factories.UserFactory(email_verified_at=timezone.now())
    flow_user = factories.UserFactory(email_verified_at=timezone.now())
    page_email, flow_email = page_user.email, flow_user.email
    browser = Client(HTTP_USER_AGENT=AGENT)
    browser.post(reverse("accounts:login"), {"email": page_user.email, "password": PASSWORD})
    mail.outbox.clear()
    assert browser.post("/me/delete/", {"password": PASSWORD}).status_code == 200
    page_mails = _mails()
    with transaction.atomic(), rls.user_context(flow_user):
        deletion.account_delete(user=flow_user, password=PASSWORD, user_agent=AGENT)
    flow_mails = _mails()
    assert _deleted(page_user) == _deleted(flow_user)
    assert _deleted(flow_user)[1:] == (False, True)
    assert page_mails == [([page_email], "[Witchcraft] Your account is deleted")]
    assert flow_mails == [([flow_email], "[Witchcraft] Your account is deleted")]
