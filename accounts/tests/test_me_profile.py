"""``/me/profile/`` and the user's time zone on their pages (accounts.timezones)."""

from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import forms, profiles, timezones
from accounts.models import AuditLog, User, UserProfile
from accounts.views import profile as views
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's
PAGE = "/me/profile/"
VALID = {
    "full_name": "Ada Lovelace",
    "display_name": "Ada",
    "avatar_url": "https://example.com/ada.png",
    "company": "Analytical Engines Ltd",
    "timezone": "Asia/Tokyo",
    "locale": "fr",
}


def _user(**fields) -> User:
    return factories.UserFactory(email_verified_at=timezone.now(), **fields)


def _with_profile(**fields) -> User:
    user = _user(**fields)
    UserProfile.objects.create(user=user, timezone="UTC", locale="en")
    return user


def _signed_in(user: User) -> Client:
    browser = Client(HTTP_USER_AGENT="Firefox on Linux")
    response = browser.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return browser


def _save(browser: Client, **changes):
    return browser.post(PAGE, {**VALID, **changes})


def _profile_updates(user) -> list[AuditLog]:
    return list(
        AuditLog.objects.filter(user=user, event_type=profiles.PROFILE_UPDATED).order_by("id")
    )


# --- the page ----------------------------------------------------------------------------------


def test_the_page_needs_a_signed_in_user(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_page_shows_the_profile_in_the_account_layout():
    user = _with_profile(full_name="Grace Hopper")
    UserProfile.objects.filter(user=user).update(company="Navy", timezone="Europe/Paris")
    page = _signed_in(user).get(PAGE)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    form = page.context["form"]
    assert form.initial["full_name"] == "Grace Hopper"
    assert form.initial["company"] == "Navy" and form.initial["timezone"] == "Europe/Paris"
    assert user.email in page.text
    current = [item["label"] for item in page.context["me_nav"] if item["current"]]
    assert current == ["Profile"]
    assert '<option value="Europe/Paris" selected>' in page.text


def test_saving_changes_the_profile_and_audits_the_field_names_only():
    user = _with_profile(full_name="Old Name")
    browser = _signed_in(user)
    response = _save(browser)
    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert views.PROFILE_SAVED in browser.get(PAGE).text
    user.refresh_from_db()
    assert user.full_name == "Ada Lovelace"
    profile = UserProfile.objects.get(user=user)
    assert (profile.display_name, profile.avatar_url, profile.company) == (
        "Ada",
        "https://example.com/ada.png",
        "Analytical Engines Ltd",
    )
    assert (profile.timezone, profile.locale) == ("Asia/Tokyo", "fr")
    [row] = _profile_updates(user)
    assert row.details == {"fields": list(profiles.FIELDS)}
    assert row.actor_id == user.pk and row.user_agent == "Firefox on Linux"
    for value in VALID.values():
        assert value not in str(row.details).replace("timezone", "").replace("locale", "")


def test_saving_the_same_values_writes_nothing():
    user = _with_profile()
    browser = _signed_in(user)
    _save(browser)
    response = _save(browser)
    assert response.status_code == 302
    assert views.PROFILE_UNCHANGED in browser.get(PAGE).text
    assert len(_profile_updates(user)) == 1


def test_only_the_changed_fields_are_audited():
    user = _with_profile()
    browser = _signed_in(user)
    _save(browser)
    _save(browser, company="Difference Engines", timezone="America/New_York")
    assert _profile_updates(user)[-1].details == {"fields": ["company", "timezone"]}


def test_a_missing_profile_row_is_created_on_the_first_save():
    user = _user()  # made without a profile, as createsuperuser does
    assert not UserProfile.objects.filter(user=user).exists()
    browser = _signed_in(user)
    page = browser.get(PAGE)
    assert page.context["form"].initial["timezone"] == "UTC"
    assert _save(browser, display_name="Newcomer").status_code == 302
    profile = UserProfile.objects.get(user=user)
    assert profile.display_name == "Newcomer" and profile.timezone == "Asia/Tokyo"


def test_an_avatar_url_without_a_scheme_is_taken_as_https():
    user = _with_profile()
    _save(_signed_in(user), avatar_url="example.com/me.jpg")
    assert UserProfile.objects.get(user=user).avatar_url == "https://example.com/me.jpg"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"avatar_url": "ftp://example.com/a.png"}, forms.AVATAR_URL_INVALID),
        ({"avatar_url": "javascript:alert(1)"}, forms.AVATAR_URL_INVALID),
        ({"avatar_url": "https://example.com/" + "a" * 500}, "at most 500 characters"),
        ({"timezone": "Mars/Olympus_Mons"}, forms.TIMEZONE_INVALID),
        ({"timezone": ""}, "This field is required."),
        ({"locale": "xx-klingon"}, forms.LOCALE_INVALID),
        ({"full_name": "Ada\nLovelace"}, forms.TEXT_INVALID),
        ({"company": "ACME\u2028Corp"}, forms.TEXT_INVALID),
        ({"display_name": "x" * 121}, "at most 120 characters"),
        ({"full_name": "x" * 201}, "at most 200 characters"),
        ({"company": "nul\x00byte"}, "Null characters are not allowed."),
    ],
)
def test_bad_input_is_refused_with_a_400_and_writes_nothing(changes, message):
    user = _with_profile(full_name="Kept Name")
    browser = _signed_in(user)
    response = _save(browser, **changes)
    assert response.status_code == 400
    assert message in response.text
    user.refresh_from_db()
    assert user.full_name == "Kept Name"
    profile = UserProfile.objects.get(user=user)
    assert (profile.display_name, profile.timezone, profile.locale) == ("", "UTC", "en")
    assert not _profile_updates(user)


def test_the_form_only_takes_post_with_a_csrf_token():
    user = _with_profile()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(PAGE, VALID).status_code == 403
    browser = Client()
    browser.force_login(user)
    assert browser.put(PAGE).status_code == 405
    assert UserProfile.objects.get(user=user).timezone == "UTC"


# --- the time zone on the user's pages ---------------------------------------------------------


def _event_at(user, when: datetime) -> None:
    AuditLog.objects.create(user=user, event_type="marker_event", created_at=when)


def test_dates_on_the_users_pages_are_shown_in_the_chosen_zone():
    user = _with_profile()
    _event_at(user, datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    browser = _signed_in(user)
    before = browser.get(reverse("accounts:security"))
    assert "2026-01-15 12:00" in before.text and "When (UTC)" in before.text

    _save(browser, timezone="Asia/Tokyo")
    after = browser.get(reverse("accounts:security"))
    assert "2026-01-15 21:00" in after.text  # UTC+9
    assert "When (Asia/Tokyo)" in after.text
    assert "2026-01-15 12:00" not in after.text
    # The zone follows the user to another device's new session.
    other = _signed_in(user).get(reverse("accounts:security"))
    assert "2026-01-15 21:00" in other.text


def test_the_zone_is_read_once_per_session_not_on_every_request():
    user = _with_profile()
    UserProfile.objects.filter(user=user).update(timezone="America/Chicago")
    browser = _signed_in(user)
    browser.get(PAGE)  # the first page reads the profile and keeps the zone in the session
    assert browser.session[timezones.SESSION_KEY] == [user.pk, "America/Chicago"]
    with CaptureQueriesContext(connection) as queries:
        browser.get(reverse("accounts:security"))
    assert not [q for q in queries if 'FROM "user_profiles"' in q["sql"]]


def test_signing_in_again_reads_the_zone_from_the_profile():
    user = _with_profile()
    browser = _signed_in(user)
    browser.get(PAGE)
    # Changed elsewhere (by staff in the admin): the next sign-in picks it up.
    UserProfile.objects.filter(user=user).update(timezone="Australia/Sydney")
    response = browser.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    page = browser.get(reverse("accounts:security"))
    assert "(Australia/Sydney)" in page.text


def test_an_unknown_stored_zone_falls_back_to_utc():
    user = _with_profile()
    UserProfile.objects.filter(user=user).update(timezone="Nowhere/Atlantis")
    page = _signed_in(user).get(reverse("accounts:security"))
    assert page.status_code == 200
    assert "When (UTC)" in page.text


def test_the_zone_never_outlives_the_request():
    user = _with_profile()
    browser = _signed_in(user)
    _save(browser, timezone="Asia/Tokyo")
    browser.get(reverse("accounts:security"))
    assert timezone.get_current_timezone_name() == "UTC"


def test_anonymous_visitors_and_the_api_stay_in_utc_and_get_no_session():
    response = Client().get(reverse("accounts:login"))
    assert response.status_code == 200
    assert "sessionid" not in response.cookies
    member = factories.api_member()
    UserProfile.objects.update_or_create(user=member, defaults={"timezone": "Asia/Tokyo"})
    api = Client(HTTP_AUTHORIZATION=f"Bearer {member.token}")
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/tokens")
    assert response.status_code == 200, response.text
    [token] = response.json()
    assert token["created_at"].endswith(("Z", "+00:00"))
    assert "sessionid" not in response.cookies
    assert not [q for q in queries if 'FROM "user_profiles"' in q["sql"]]


def test_only_the_owner_can_create_a_missing_profile():
    owner, other = _user(), _user()
    with (
        pytest.raises(DatabaseError) as refused,
        transaction.atomic(),
        rls.user_context(other),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT ensure_user_profile(p_user_id => %s)", [owner.pk])
    assert refused.value.__cause__.sqlstate == "42501"
    assert not UserProfile.objects.filter(user=owner).exists()
    with transaction.atomic(), rls.user_context(owner), connection.cursor() as cursor:
        cursor.execute("SELECT ensure_user_profile(p_user_id => %s)", [owner.pk])
        assert cursor.fetchone()[0] is True
        cursor.execute("SELECT ensure_user_profile(p_user_id => %s)", [owner.pk])
        assert cursor.fetchone()[0] is False  # already there: nothing changes
    assert UserProfile.objects.get(user=owner).timezone == "UTC"
