"""``/dashboard/archive/``: staff search the archived audit events and usage rows by user and
time range (Django test client, real PostgreSQL)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from witchcraft.dashboard import archive_search
from witchcraft.testing import archive, factories

pytestmark = pytest.mark.django_db
URL = "/dashboard/archive/"


@pytest.fixture
def staff_client() -> Client:
    browser = Client()
    browser.force_login(factories.UserFactory(is_staff=True))
    return browser


@pytest.fixture
def world(catalog_model):
    ann, bob = factories.UserFactory(email="ann@example.com"), factories.UserFactory()
    usage = {
        ann.pk: [archive.old_usage(ann, catalog_model, day=d) for d in (3, 5)],
        bob.pk: [archive.old_usage(bob, catalog_model, day=4)],
    }
    archive.archive_usage()
    events = {
        ann.pk: [archive.archived_event(ann, days_old=d) for d in (100, 120, 150)],
        bob.pk: [archive.archived_event(bob, days_old=110)],
    }
    return ann, bob, usage, events


def _ids(response, kind: str) -> list[int]:
    return [row["id"] for row in response.context[kind]["rows"]]


def test_staff_find_a_users_archived_rows_by_email_or_id_newest_first(staff_client, world):
    ann, _, usage, events = world
    for query in ("ann@example.com", "ANN@example.com ", str(ann.pk)):
        response = staff_client.get(URL, {"user": query})
        assert response.status_code == 200
        assert _ids(response, "audit") == [e.pk for e in events[ann.pk]]
        assert _ids(response, "usage") == [u.pk for u in reversed(usage[ann.pk])]
    assert "ann@example.com" in response.text


def test_a_time_range_narrows_the_search(staff_client, world):
    ann, bob, _, events = world
    now = timezone.now()
    since, until = now - timedelta(days=125), now - timedelta(days=105)
    fmt = "%Y-%m-%dT%H:%M"
    response = staff_client.get(
        URL, {"user": str(ann.pk), "since": since.strftime(fmt), "until": until.strftime(fmt)}
    )
    assert _ids(response, "audit") == [events[ann.pk][1].pk]
    assert _ids(response, "usage") == []
    # Everyone's events in a range of at most 31 days.
    response = staff_client.get(URL, {"since": since.strftime(fmt), "until": until.strftime(fmt)})
    assert _ids(response, "audit") == [events[bob.pk][0].pk, events[ann.pk][1].pk]


def test_pages_hold_per_page_rows_with_a_bounded_number_of_queries(
    staff_client, world, monkeypatch
):
    ann, _, _, events = world
    with CaptureQueriesContext(connection) as every_row:
        staff_client.get(URL, {"user": ann.email})
    monkeypatch.setattr(archive_search, "PER_PAGE", 2)
    with CaptureQueriesContext(connection) as two_rows:
        first = staff_client.get(URL, {"user": ann.email})
    # The same queries whatever the rows shown (no query per row), and few of them.
    assert len(every_row) == len(two_rows) <= 16
    assert _ids(first, "audit") == [e.pk for e in events[ann.pk][:2]]
    assert first.context["audit"]["next"] == 2 and first.context["audit"]["previous"] is None
    second = staff_client.get(URL, {"user": ann.email, "audit_page": "2"})
    assert _ids(second, "audit") == [events[ann.pk][2].pk]
    assert second.context["audit"]["next"] is None
    assert _ids(second, "usage") == _ids(first, "usage")  # each list pages on its own


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, None),
        ({"since": "2026-01-01T00:00"}, archive_search.NEED_USER_OR_RANGE),
        (
            {"since": "2026-01-01T00:00", "until": "2026-03-01T00:00"},
            archive_search.NEED_USER_OR_RANGE,
        ),
        ({"user": "nobody@example.com"}, archive_search.NO_SUCH_USER),
        ({"user": "99999999999999999999"}, archive_search.NO_SUCH_USER),
        ({"user": "ann@example..com"}, "Enter a valid email address."),
        ({"user": "a\x00b"}, "Null characters are not allowed."),
        (
            {"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"},
            archive_search.TO_BEFORE_FROM,
        ),
        ({"user": "1", "since": "not a date"}, "Enter a valid date/time."),
        ({"user": "1", "since": "0001-01-01T00:00"}, None),
    ],
)  # fmt: skip
def test_bad_searches_are_answered_with_a_form_error_and_search_nothing(
    staff_client, params, message
):
    response = staff_client.get(URL, params)
    assert response.status_code == 200
    assert response.context["searched"] is False
    if message:
        assert message in response.text.replace("&#x27;", "'")


def test_only_staff_see_the_page(client, world):
    assert client.get(URL).status_code == 302  # to sign in
    client.force_login(world[0])
    assert client.get(URL, {"user": str(world[0].pk)}).status_code == 404
