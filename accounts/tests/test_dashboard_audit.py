"""``/dashboard/audit/`` and its CSV export (Django test client, real PostgreSQL)."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.shortcuts import resolve_url

from accounts import audit
from accounts.models import AuditLog, User
from witchcraft.platform.csv_export import csv_cell
from witchcraft.testing import factories
from witchcraft.testing.factories import AuditLogFactory

pytestmark = pytest.mark.django_db

URL = "/dashboard/audit/"
CSV_URL = "/dashboard/audit.csv"


@pytest.fixture
def staff(client):
    member = User.objects.create_user(
        email="staff@example.com", password="correct horse battery", is_staff=True
    )
    client.force_login(member)
    return member


def minute_ago(hours: int = 2) -> datetime:
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(second=0, microsecond=0)


def failures(count: int, *, minute: datetime, user: User | None = None) -> None:
    user = user or factories.UserFactory()
    for second in range(count):
        AuditLogFactory(
            user=user,
            event_type=audit.LOGIN_FAILED,
            severity="warning",
            ip="203.0.113.9",
            created_at=minute + timedelta(seconds=second * 5),
        )


def page_events(response) -> list[int]:
    return [row["log"].pk for row in response.context["rows"]]


def csv_rows(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_anonymous_visitor_is_sent_to_sign_in(client):
    for url in (URL, CSV_URL):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(resolve_url(settings.LOGIN_URL))


def test_normal_user_gets_404(client, user):
    client.force_login(user)
    assert client.get(URL).status_code == 404
    assert client.get(CSV_URL).status_code == 404


def test_empty_state(client, staff):
    AuditLog.objects.all().delete()
    response = client.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "No audit events yet." in body
    assert "No failed sign-in spike in this range." in body
    assert 'href="/dashboard/audit/"' in body  # in the navigation
    filtered = client.get(URL, {"event_type": "no_such_event"}).content.decode()
    assert "No audit event matches these filters." in filtered
    assert csv_rows(client.get(CSV_URL)) == [
        [
            "created_at",
            "event_type",
            "severity",
            "user",
            "actor",
            "ip",
            "user_agent",
            "request_id",
            "target_type",
            "target_id",
            "details",
        ]
    ]


def test_filters_change_the_rows(client, staff):
    alice = factories.UserFactory(email="alice@example.com")
    bob = factories.UserFactory(email="bob@example.com")
    old = AuditLogFactory(user=alice, created_at=datetime.now(UTC) - timedelta(days=3))
    login = AuditLogFactory(user=alice, ip="198.51.100.1")
    failed = AuditLogFactory(
        user=bob, event_type=audit.LOGIN_FAILED, severity="warning", ip="198.51.100.2"
    )
    staffed = AuditLogFactory(user=bob, actor=staff, event_type=audit.STAFF_FLAG_CHANGED)

    def ids(**params):
        response = client.get(URL, params)
        assert response.status_code == 200
        return set(page_events(response)) & {old.pk, login.pk, failed.pk, staffed.pk}

    assert ids() == {old.pk, login.pk, failed.pk, staffed.pk}
    assert ids(event_type=audit.LOGIN_FAILED) == {failed.pk}
    assert ids(severity="warning") == {failed.pk}
    assert ids(user="Alice@example.com") == {old.pk, login.pk}
    assert ids(actor="staff@example.com") == {staffed.pk}
    assert ids(ip="198.51.100.1") == {login.pk}
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert ids(user="alice@example.com", since=since) == {login.pk}
    until = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert ids(user="alice@example.com", until=until) == {old.pk}


def test_newest_first_and_paginated(client, staff):
    AuditLog.objects.all().delete()
    user = factories.UserFactory()
    start = datetime.now(UTC) - timedelta(hours=1)
    logs = [AuditLogFactory(user=user, created_at=start + timedelta(seconds=i)) for i in range(51)]
    first = client.get(URL)
    assert page_events(first) == [log.pk for log in reversed(logs)][:50]
    second = client.get(URL, {"page": 2})
    assert page_events(second) == [logs[0].pk]


def test_csv_equals_the_filtered_rows(client, staff):
    alice = factories.UserFactory(email="alice@example.com")
    bob = factories.UserFactory(email="bob@example.com")
    for _ in range(3):
        AuditLogFactory(user=alice, ip="198.51.100.1", user_agent="=HYPERLINK(1)")
    AuditLogFactory(user=bob)
    params = {"user": "alice@example.com"}
    page = client.get(URL, params)
    rows = csv_rows(client.get(CSV_URL, params))
    header, body = rows[0], rows[1:]
    shown = [row["log"] for row in page.context["rows"]]
    assert len(body) == len(shown) == 3
    for line, log in zip(body, shown, strict=True):
        record = dict(zip(header, line, strict=True))
        assert record["created_at"] == log.created_at.isoformat()
        assert record["event_type"] == log.event_type
        assert record["user"] == "alice@example.com"
        assert record["ip"] == "198.51.100.1"
        # Formula injection: the cell is text to a spreadsheet.
        assert record["user_agent"] == "'=HYPERLINK(1)"


def test_csv_cells_never_start_a_formula():
    assert csv_cell("=1+1") == "'=1+1"
    assert csv_cell("+1") == "'+1"
    assert csv_cell("-1") == "'-1"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("plain") == "plain"
    assert csv_cell(None) == ""


def test_eleven_failures_in_a_minute_are_a_spike_ten_are_not(client, staff):
    spike_minute = minute_ago(2)
    calm_minute = minute_ago(3)
    failures(11, minute=spike_minute)
    failures(10, minute=calm_minute)
    response = client.get(URL)
    spikes = response.context["spikes"]
    assert [(s["minute"], s["failures"]) for s in spikes] == [(spike_minute, 11)]
    body = response.content.decode()
    assert f"{spike_minute:%Y-%m-%d %H:%M} UTC: 11 failures" in body
    assert f"{calm_minute:%Y-%m-%d %H:%M} UTC" not in body


def test_spikes_follow_the_time_range(client, staff):
    old_minute = minute_ago(24 * 5)
    failures(12, minute=old_minute)
    assert client.get(URL).context["spikes"] == []  # default: the last 24 hours
    since = (old_minute - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    until = (old_minute + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    spikes = client.get(URL, {"since": since, "until": until}).context["spikes"]
    assert [(s["minute"], s["failures"]) for s in spikes] == [(old_minute, 12)]


def test_impersonated_and_staff_actions_are_marked(client, staff):
    member = factories.UserFactory(email="member@example.com")
    acted = AuditLogFactory(
        user=member, actor=staff, event_type=audit.IMPERSONATED_ACTION, severity="warning"
    )
    own = AuditLogFactory(user=member, actor=member, event_type=audit.LOGIN_SUCCEEDED)
    response = client.get(URL)
    rows = {row["log"].pk: row for row in response.context["rows"]}
    assert rows[acted.pk]["impersonated"] and rows[acted.pk]["by_other"]
    assert not rows[own.pk]["impersonated"] and not rows[own.pk]["by_other"]
    body = response.content.decode()
    assert "Impersonated action" in body
    assert f'by staff <a href="/dashboard/users/{staff.pk}/">staff@example.com</a>' in body
    assert body.count("by staff ") == 1


def test_user_text_is_escaped(client, staff):
    member = factories.UserFactory(full_name="<script>alert('name')</script>")
    AuditLogFactory(user=member, user_agent="<script>alert('ua')</script>")
    body = client.get(URL).content.decode()
    assert "<script>alert(" not in body
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in body
    assert "&lt;script&gt;alert(&#x27;ua&#x27;)&lt;/script&gt;" in body


def test_invalid_filters_apply_none(client, staff):
    log = AuditLogFactory()
    response = client.get(URL, {"ip": "not-an-ip"})
    assert response.status_code == 200
    assert log.pk in page_events(response)
    assert "Some filters are invalid" in response.content.decode()


def test_query_count_is_bounded(client, staff, django_assert_max_num_queries):
    AuditLog.objects.all().delete()
    AuditLogFactory(actor=staff)
    with django_assert_max_num_queries(20) as one:
        client.get(URL)
    with django_assert_max_num_queries(20) as one_csv:
        client.get(CSV_URL)
    for _ in range(60):
        AuditLogFactory(actor=factories.UserFactory())
    failures(11, minute=minute_ago(1))
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(URL)
    assert len(response.context["rows"]) == 50
    with django_assert_max_num_queries(len(one_csv.captured_queries)):
        rows = csv_rows(client.get(CSV_URL))
    assert len(rows) == 1 + 72
