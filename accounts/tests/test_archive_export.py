"""Archived rows in the user's data export (/me/export/) and through their account's deletion
(/me/delete/): the audit events stored compressed and the usage rows of archived partitions
are exported with the live ones, and a deletion treats them as it treats the live ones (kept,
the account they point at anonymised)."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditLog
from usage.models import AIUsageRequest
from witchcraft.testing import archive, factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's


def _signed_in(user) -> Client:
    browser = Client(HTTP_USER_AGENT="Firefox on Linux")
    response = browser.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return browser


def _export(user) -> dict:
    response = _signed_in(user).post("/me/export/")
    assert response.status_code == 200
    return json.loads(b"".join(response.streaming_content))


@pytest.fixture
def archived(catalog_model):
    """Two users, each with a live and an archived usage row and audit event."""
    me = factories.UserFactory(email_verified_at=timezone.now())
    other = factories.UserFactory(email_verified_at=timezone.now())
    staff = factories.UserFactory(is_staff=True)
    rows = {}
    for user in (me, other):
        old_usage = archive.old_usage(user, catalog_model, metadata={"client": "cli"})
        rows[user.pk] = {"usage": old_usage, "live_usage": factories.usage_request(
            user=user, model=catalog_model)}  # fmt: skip
    archive.archive_usage()
    for user in (me, other):
        rows[user.pk]["event"] = archive.archived_event(
            user,
            actor=staff,
            event_type="password_changed",
            ip="198.51.100.7",
            details={"by": "support", "staff_email": staff.email},
        )
    assert not AIUsageRequest.objects.filter(pk=rows[me.pk]["usage"].pk).exists()
    assert not AuditLog.objects.filter(pk=rows[me.pk]["event"].pk).exists()
    return me, other, rows


def test_the_export_holds_the_users_archived_rows_and_nobody_elses(archived, catalog_model):
    me, other, rows = archived
    data = _export(me)

    usage = data["usage_requests"]
    assert [row["id"] for row in usage] == [rows[me.pk]["usage"].pk, rows[me.pk]["live_usage"].pk]
    old = usage[0]
    assert set(old) == set(usage[1])  # the same fields as a live row
    assert old["model"] == catalog_model.name and old["metadata"] == {"client": "cli"}
    assert old["cost"] == str(rows[me.pk]["usage"].cost)

    events = {row["id"]: row for row in data["audit_events"]}
    event = events[rows[me.pk]["event"].pk]
    assert event["event_type"] == "password_changed" and event["ip"] == "198.51.100.7"
    assert event["by_staff"] is True
    assert event["details"] == {"by": "support"}  # the staff member's address stays out
    assert set(event) == set(events[max(events)])  # the same fields as a live event
    assert rows[other.pk]["event"].pk not in events
    assert rows[other.pk]["usage"].pk not in {row["id"] for row in usage}

    [audited] = AuditLog.objects.filter(user=me, event_type="data_exported")
    assert audited.details["counts"]["usage_requests"] == 2
    # Counted before its own audit row was written.
    assert audited.details["counts"]["audit_events"] + 1 == len(data["audit_events"])


def test_a_deletion_keeps_the_archived_rows_as_it_keeps_the_live_ones(archived):
    me, _, rows = archived
    response = _signed_in(me).post("/me/delete/", {"password": PASSWORD})
    assert response.status_code == 200

    me.refresh_from_db()
    assert me.deleted_at is not None and me.email == f"deleted-{me.pk}@deleted.invalid"
    staff = factories.UserFactory(is_staff=True)
    browser = Client()
    browser.force_login(staff)
    page = browser.get("/dashboard/archive/", {"user": str(me.pk)})
    assert [row["id"] for row in page.context["audit"]["rows"]] == [rows[me.pk]["event"].pk]
    assert [row["id"] for row in page.context["usage"]["rows"]] == [rows[me.pk]["usage"].pk]
    assert f"deleted-{me.pk}@deleted.invalid" in page.text
