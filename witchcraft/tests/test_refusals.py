"""One refusal vocabulary from SQL to HTTP: every domain error is a ``db_errors.Refused`` with a
code and a field, one table (witchcraft.platform.refusals) answers them, through the API's one
handler and on the pages' forms."""

import json

import pytest
from django import forms
from django.core.cache import cache
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from accounts import deletion, devices, passwords, services, twofactor
from billing import webhooks
from witchcraft import api
from witchcraft.platform import db_errors, refusals
from witchcraft.testing.factories import UserFactory, api_member

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's

# How every code of the vocabulary is answered: (API status, API error code, a view's status).
EXPECTED = {
    "invalid": (422, "validation_error", 400),
    "forbidden": (403, "forbidden", 403),
    "not_found": (404, "not_found", 404),
    "conflict": (409, "conflict", 409),
    "locked": (429, "rate_limited", 429),
    "insufficient_scope": (403, "insufficient_scope", 403),
}


def test_the_table_answers_every_code_of_the_vocabulary():
    assert set(db_errors.CODES) == set(refusals.ANSWERS) == set(EXPECTED)
    for code, (status, api_code, view_status) in EXPECTED.items():
        refused = db_errors.Refused(code, "No.")
        assert refusals.refusal_answer(refused) == refusals.Answer(status, view_status, api_code)
    stray = refusals.refusal_answer(db_errors.Refused("something_else", "No."))
    assert (stray.api_status, stray.api_code, stray.view_status) == (400, "bad_request", 400)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_the_api_handler_answers_each_code_through_the_table(code):
    request = RequestFactory().post("/api/v1/anything")
    refused = db_errors.Refused(code, "Not like this.", field="name")
    response = api._refused(request, refused)
    status, api_code, _ = EXPECTED[code]
    assert response.status_code == status
    assert json.loads(response.content) == {
        "error": {
            "code": api_code,
            "message": "Not like this.",
            "details": [{"field": "name", "message": "Not like this."}],
        }
    }


def test_the_api_handler_gives_no_details_without_a_field_and_an_object_with_details():
    request = RequestFactory().post("/api/v1/anything")
    bare = json.loads(api._refused(request, db_errors.Refused("conflict", "Busy.")).content)
    assert bare == {"error": {"code": "conflict", "message": "Busy."}}
    refused = db_errors.Refused("forbidden", "Not yours.", field="scopes")
    refused.details = {"not_held": ["account"]}
    answer = json.loads(api._refused(request, refused).content)
    assert answer["error"]["details"] == {"field": "scopes", "not_held": ["account"]}


# --- the five domain errors that were outside the vocabulary ----------------------------------


def _raised(error_class, call, *args, **kwargs) -> db_errors.Refused:
    with pytest.raises(error_class) as raised:
        call(*args, **kwargs)
    assert isinstance(raised.value, db_errors.Refused)
    return raised.value


def _refusal_of(refused: db_errors.Refused) -> tuple:
    return refused.code, refused.field, refused.message


def test_a_registration_error_is_a_refusal_with_its_code_and_field():
    bad = _raised(
        services.RegistrationError, services.user_register, email="nope", password=PASSWORD
    )
    assert _refusal_of(bad) == ("invalid", "email", services.EMAIL_INVALID)
    UserFactory(email="taken@example.com")
    with transaction.atomic():
        taken = _raised(
            services.RegistrationError,
            services.user_register,
            email="taken@example.com",
            password=PASSWORD,
        )
    assert _refusal_of(taken) == ("conflict", "email", services.EMAIL_TAKEN)


def test_a_password_change_error_is_a_refusal_with_its_code_and_field():
    user = UserFactory()
    change = {"user_id": user.pk, "new_password": "another fine passphrase"}
    wrong = _raised(
        passwords.PasswordChangeError,
        passwords.password_change,
        current_password="not it",
        **change,
    )
    assert _refusal_of(wrong) == ("invalid", "current_password", passwords.CURRENT_PASSWORD_WRONG)
    cache.set(f"password_change:wrong:{user.pk}", passwords.MAX_WRONG_ATTEMPTS)
    locked = _raised(
        passwords.PasswordChangeError,
        passwords.password_change,
        current_password=PASSWORD,
        **change,
    )
    assert _refusal_of(locked) == ("locked", "current_password", passwords.TOO_MANY_ATTEMPTS)


def test_a_session_error_is_a_refusal_with_its_code():
    user = UserFactory()
    gone = _raised(
        devices.SessionError,
        devices.session_revoke,
        user_id=user.pk,
        ref="0" * devices.REF_LENGTH,
        current_session_key=None,
    )
    assert _refusal_of(gone) == ("not_found", None, devices.SESSION_NOT_FOUND)
    key = "k" * 32
    current = _raised(
        devices.SessionError,
        devices.session_revoke,
        user_id=user.pk,
        ref=devices.session_reference(key),
        current_session_key=key,
    )
    assert _refusal_of(current) == ("conflict", None, devices.SESSION_IS_CURRENT)


def test_a_two_factor_refusal_is_a_refusal_with_its_code_and_field(settings):
    user = UserFactory()
    wrong = _raised(
        twofactor.TwoFactorRefused, twofactor.two_factor_enable, user=user, code="000000"
    )
    assert _refusal_of(wrong) == ("invalid", "code", twofactor.SETUP_CODE_INVALID)
    settings.STAFF_2FA_REQUIRED = True
    staff = _raised(
        twofactor.TwoFactorRefused, twofactor.two_factor_disable, user=UserFactory(is_staff=True)
    )
    assert _refusal_of(staff) == ("forbidden", None, twofactor.STAFF_MUST_KEEP)


def test_a_webhook_refusal_is_a_refusal_with_its_code_field_and_reason():
    unsigned = _raised(
        webhooks.WebhookRefused,
        webhooks.verify_signature,
        payload=b"{}",
        header="",
        secret="whsec_x",
        tolerance=300,
    )
    assert _refusal_of(unsigned) == ("invalid", webhooks.SIGNATURE_HEADER, webhooks.NO_SIGNATURE)
    assert unsigned.reason == "bad_signature"
    body = _raised(webhooks.WebhookRefused, webhooks.event_parse, b"not json")
    assert _refusal_of(body) == ("invalid", "body", webhooks.NOT_JSON)
    assert body.reason == "invalid"


# --- one endpoint per app through the one handler ----------------------------------------------


def _api(client, method: str, path: str, token: str, body=None):
    return getattr(client, method)(
        f"/api/v1{path}",
        *([json.dumps(body)] if body is not None else []),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_an_accounts_refusal_is_answered_by_the_one_handler(client):
    user = api_member()
    response = _api(client, "post", "/tokens", user.token, {"name": "x", "scopes": ["nope"]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"] == {"field": "scopes"}


def test_an_agents_refusal_is_answered_by_the_one_handler(client):
    user = api_member()
    response = _api(client, "get", "/agents/sessions?cursor=bad", user.token)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [{"field": "cursor", "message": error["message"]}]


# --- pages -------------------------------------------------------------------------------------


class _SignUp(forms.Form):
    email = forms.CharField()
    password = forms.CharField()


def _valid_form() -> _SignUp:
    form = _SignUp({"email": "ann@example.com", "password": "x"})
    assert form.is_valid()
    return form


def test_the_form_helper_puts_the_message_on_the_refused_field():
    form = _valid_form()
    refusals.form_add_refusal(form, db_errors.Refused("invalid", "Not an address.", field="email"))
    assert form.errors == {"email": ["Not an address."]}


def test_the_form_helper_puts_a_refusal_of_no_field_of_the_form_on_the_whole_form():
    for field in (None, "is_staff"):
        form = _valid_form()
        refusals.form_add_refusal(form, db_errors.Refused("forbidden", "Not you.", field=field))
        assert form.non_field_errors() == ["Not you."] and "email" not in form.errors


def test_the_form_helper_puts_every_message_of_a_refusal():
    form = _valid_form()
    refused = passwords.PasswordChangeError(
        "invalid", "Too short.", "Too common.", field="password"
    )
    refusals.form_add_refusal(form, refused)
    assert form.errors == {"password": ["Too short.", "Too common."]}


def test_a_page_answers_a_refusal_with_the_tables_status(client):
    user = UserFactory(email_verified_at=timezone.now())
    client.force_login(user)
    response = client.post("/me/delete/", {"password": "not the password"})
    assert response.status_code == 400
    assert response.context["form"].errors == {"password": [deletion.PASSWORD_WRONG]}
