"""Staff notifications (witchcraft.operations.notifications): a monitoring alert that starts
firing is told once by mail and by webhook (a Slack-compatible body), never again while it fires,
"resolved" once when it stops; a new quota alert is told once; a webhook that fails is retried
alone until it is delivered, once; the webhook's address (a secret) is never logged nor stored;
nothing configured sends nothing. The jobs run through the real queue (the check job, then one
delivery job per channel) against a local receiver on 127.0.0.1.

The queue tests commit (the worker's own connections see committed rows only); the queue's
tables are emptied around each.
"""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from procrastinate.contrib.django import app

from accounts.models import User
from accounts.services import user_register
from billing.models import SubscriptionTier, UsageAlert, UserQuota
from billing.services import quota_consume
from witchcraft.models import NotificationState, StaffNotification
from witchcraft.operations import jobs, monitoring, notifications
from witchcraft.operations.notifications import channels
from witchcraft.platform import rls
from witchcraft.testing import factories
from witchcraft.testing.queue import clear_queue, queue_text, queued_jobs

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
STAFF = ["ops@example.com", "oncall@example.com"]
ERROR_RATE = "monitoring:high-error-rate"
transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


# --- a local webhook receiver -------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 (a free port) that records each POST's path and JSON body
    and answers with the next of ``answers`` (a status, or "slow": no answer in time), then
    200."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.paths: list[str] = []
        self.answers: list[int | str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                answer = receiver.answers.pop(0) if receiver.answers else 200
                receiver.posts.append(body)
                receiver.paths.append(self.path)
                if answer == "slow":
                    time.sleep(1.5)
                    answer = 200
                self.send_response(answer)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if answer == 200 else b"error")

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def texts(self, contains: str = "") -> list[str]:
        return [post["text"] for post in self.posts if contains in post["text"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def secret() -> str:
    return f"B0{secrets.token_hex(6)}/s3cret{secrets.token_hex(10)}"


@pytest.fixture
def configured(settings, receiver, secret):
    """Both channels: two staff addresses, the receiver as the webhook (its path the secret)."""
    settings.STAFF_NOTIFY_EMAILS = list(STAFF)
    settings.STAFF_NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:{receiver.port}/services/T01/{secret}"
    settings.STAFF_NOTIFY_WEBHOOK_TIMEOUT_SECONDS = 0.5
    return receiver


@pytest.fixture
def empty_queue():
    clear_queue()
    yield
    clear_queue()


@pytest.fixture
def pinned(monkeypatch):
    """The monitoring clock (the page's and the check's) at a fixed moment of today."""
    now = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr(monitoring, "clock", lambda: now)
    return now


def _requests(now: datetime, status: str, count: int, *, ago: timedelta = timedelta(seconds=30)):
    model = factories.catalog_model()
    user = factories.UserFactory()
    for _ in range(count):
        factories.usage_request(user=user, model=model, created_at=now - ago, status=status)


def _error_rate_firing(now: datetime) -> None:
    """1 failed of 14 in the last 5 minutes: 7.1 %, over the 5 % threshold."""
    _requests(now, "success", 13)
    _requests(now, "error", 1)


def _check() -> None:
    """One run of the scheduled check through the queue, and of the jobs it queued."""
    _run_check()


def _run_check(**options) -> None:
    """The check's job, then the delivery jobs it queued (a one-shot worker stops when it finds
    the queue empty, before the check's jobs are in it)."""
    app.configure_task("check_staff_notifications").defer(timestamp=int(time.time()))
    jobs.run_due_jobs(**options)
    jobs.run_due_jobs(**options)


def _mails_to_staff() -> list:
    return [message for message in mail.outbox if message.to == STAFF]


def _retry_now() -> None:
    with connection.cursor() as cursor:  # the pause before the retry is over
        cursor.execute("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")


# --- state changes --------------------------------------------------------------------------


@transactional
def test_firing_is_told_once_on_each_channel_and_resolved_once(configured, empty_queue, pinned):
    _error_rate_firing(pinned)

    _check()

    (message,) = _mails_to_staff()
    assert message.subject == "[Witchcraft] High error rate: firing (warning)"
    assert "7.1 % (1 failed of 14" in message.body
    assert "more than 5 %" in message.body
    assert "/dashboard/monitoring/" in message.body
    assert len(message.alternatives) == 1  # the HTML part
    (post,) = configured.posts
    assert post["text"].startswith("High error rate: firing (warning)\nHigh error rate: 7.1 %")
    assert [block["type"] for block in post["blocks"]] == ["header", "section", "context"]
    assert post["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "High error rate: firing (warning)",
    }
    assert "7.1 %" in post["blocks"][1]["text"]["text"]
    (told,) = StaffNotification.objects.all()
    assert (told.check_key, told.state, told.channels) == (
        ERROR_RATE,
        "firing",
        ["mail", "webhook"],
    )
    assert told.mail_sent_at and told.webhook_sent_at and told.last_error == ""
    assert NotificationState.objects.get(check_key=ERROR_RATE).state == "firing"
    assert queued_jobs() == []  # the check and both deliveries succeeded

    # Still firing (a little higher): nothing new.
    _requests(pinned, "error", 1)
    _check()
    assert len(_mails_to_staff()) == 1 and len(configured.posts) == 1
    assert StaffNotification.objects.count() == 1

    # Back under the threshold (the failures left the 5-minute window): resolved, once.
    later = pinned + timedelta(minutes=10)
    monitoring.clock = lambda: later  # the fixture's monkeypatch restores it
    _check()
    _check()
    resolved = _mails_to_staff()[1:]
    assert [m.subject for m in resolved] == ["[Witchcraft] High error rate: resolved"]
    assert configured.texts("resolved") == [configured.posts[1]["text"]]
    assert len(configured.posts) == 2
    assert NotificationState.objects.get(check_key=ERROR_RATE).state == "ok"
    assert list(StaffNotification.objects.order_by("id").values_list("state", flat=True)) == [
        "firing",
        "resolved",
    ]


@transactional
def test_the_warning_half_way_is_not_firing(configured, empty_queue, pinned):
    """The page's "warning" (half of the threshold) is not told: only firing is."""
    _requests(pinned, "success", 30)
    _requests(pinned, "error", 1)  # 3.2 %: warning on the page
    _check()
    assert configured.posts == [] and _mails_to_staff() == []
    assert not StaffNotification.objects.exists()


@transactional
@pytest.mark.parametrize("failure", [500, 503, 429, "slow"])
def test_a_failing_webhook_is_retried_alone_and_delivered_once(
    configured, empty_queue, pinned, failure
):
    configured.answers = [failure]
    _error_rate_firing(pinned)

    _check()

    assert len(_mails_to_staff()) == 1  # the mail went out on its own
    assert len(configured.posts) == 1  # one attempt, failed
    (waiting,) = queued_jobs()
    assert waiting["task_name"] == "deliver_staff_notification"
    assert waiting["args"] == {
        "notification_id": waiting["args"]["notification_id"],
        "channel": "webhook",
    }
    assert waiting["status"] == "todo" and waiting["attempts"] == 1
    assert waiting["scheduled_at"] > datetime.now(UTC)  # after a pause
    told = StaffNotification.objects.get()
    assert told.webhook_sent_at is None and told.mail_sent_at is not None
    expected = "did not answer in time" if failure == "slow" else f"answered {failure}"
    assert told.last_error == f"webhook: the webhook at 127.0.0.1 {expected}"

    _retry_now()
    jobs.run_due_jobs()

    assert len(configured.posts) == 2 and configured.posts[0] == configured.posts[1]
    assert len(_mails_to_staff()) == 1  # no second mail for the webhook's retry
    assert StaffNotification.objects.get().webhook_sent_at is not None
    assert queued_jobs() == []
    _check()
    assert len(configured.posts) == 2 and len(_mails_to_staff()) == 1


@transactional
def test_a_webhook_that_refuses_is_not_retried(configured, empty_queue, pinned):
    configured.answers = [404]  # a revoked webhook
    _error_rate_firing(pinned)
    _run_check(delete_jobs="never")
    (failed,) = queued_jobs("deliver_staff_notification")[1:]  # the mail's, then the webhook's
    assert failed["args"]["channel"] == "webhook" and failed["status"] == "failed"
    assert failed["attempts"] == 1
    told = StaffNotification.objects.get()
    assert told.last_error == "webhook: the webhook at 127.0.0.1 refused the message (404)"
    assert told.mail_sent_at is not None and told.webhook_sent_at is None


@transactional
def test_a_failing_mail_server_is_retried_without_posting_again(
    configured, empty_queue, pinned, settings
):
    from witchcraft.platform.mailers import mailers_from_url

    settings.MAILERS = mailers_from_url("smtp://127.0.0.1:9")  # nothing listens there
    _error_rate_firing(pinned)
    _check()
    assert len(configured.posts) == 1 and _mails_to_staff() == []
    (waiting,) = queued_jobs()
    assert waiting["args"]["channel"] == "mail" and waiting["attempts"] == 1
    assert StaffNotification.objects.get().last_error.startswith("mail: the mail was not sent")

    settings.MAILERS = mailers_from_url("memorymail://")
    _retry_now()
    jobs.run_due_jobs()
    assert len(_mails_to_staff()) == 1 and len(configured.posts) == 1
    assert StaffNotification.objects.get().mail_sent_at is not None


# --- the webhook's address is a secret -------------------------------------------------------


def _tables_holding(text: str) -> list[str]:
    """Every table of the database (the queue's included) with a row whose text holds
    ``text``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        tables = [name for (name,) in cursor.fetchall()]
        found = []
        for table in tables:
            cursor.execute(
                f"SELECT EXISTS (SELECT FROM {table} t WHERE strpos(t::text, %s) > 0)",
                [text],
            )
            if cursor.fetchone()[0]:
                found.append(table)
    return found


@transactional
def test_the_webhook_address_is_never_logged_nor_stored(
    configured, empty_queue, pinned, secret, caplog, settings
):
    caplog.set_level(logging.DEBUG)
    configured.answers = [500]
    _error_rate_firing(pinned)
    _run_check(delete_jobs="never")
    # And a webhook nobody answers (connection refused), on the same secret path.
    closed = Receiver()
    closed.close()
    settings.STAFF_NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:{closed.port}/services/T01/{secret}"
    _retry_now()
    jobs.run_due_jobs(delete_jobs="never")

    assert caplog.records, "the jobs log their runs"
    assert "answered 500" in caplog.text and "could not be reached" in caplog.text
    for part in (secret, secret.split("/")[1]):
        assert part not in caplog.text
        assert part not in queue_text()
        assert _tables_holding(part) == []
    told = StaffNotification.objects.get()
    assert (
        told.last_error
        == "webhook: the webhook at 127.0.0.1 could not be reached: ConnectionRefusedError"
    )


def test_mask_keeps_the_host_only(settings):
    settings.STAFF_NOTIFY_WEBHOOK_URL = "https://hooks.example.com/services/T1/B2/xyzSECRET"
    assert (
        notifications.mask(
            "POST https://hooks.example.com/services/T1/B2/xyzSECRET failed\n"
            "on /services/T1/B2/xyzSECRET"
        )
        == "POST hooks.example.com/… failed on /…"
    )
    assert notifications.webhook_host() == "hooks.example.com"
    settings.STAFF_NOTIFY_WEBHOOK_URL = "https://user:pa55word@hooks.example.com/h?token=abcdef"
    assert notifications.mask("token=abcdef pa55word") == "… …"
    assert notifications.webhook_host() == "hooks.example.com"
    assert len(notifications.mask("x" * 1000)) == channels.ERROR_LENGTH


# --- nothing configured ----------------------------------------------------------------------


@transactional
def test_nothing_configured_sends_nothing_and_fails_nothing(settings, empty_queue, pinned):
    settings.STAFF_NOTIFY_EMAILS = []
    settings.STAFF_NOTIFY_WEBHOOK_URL = ""
    _error_rate_firing(pinned)
    _run_check(delete_jobs="never")

    (check,) = queued_jobs()  # no delivery job
    assert check["task_name"] == "check_staff_notifications" and check["status"] == "succeeded"
    assert mail.outbox == []
    told = StaffNotification.objects.get()  # still recorded for the page
    assert told.channels == [] and told.mail_sent_at is None and told.webhook_sent_at is None


# --- quota alerts --------------------------------------------------------------------------


@transactional
def test_a_new_quota_alert_is_told_once(configured, empty_queue, pinned):
    member = User.objects.get(pk=user_register(email="meter@example.com", password=PASSWORD))
    limit = SubscriptionTier.objects.get(slug="free").monthly_token_limit
    with transaction.atomic(), rls.user_context(member, may_record=True):
        quota_consume(user_id=member.pk, tokens=limit * 85 // 100, cost=0)
    alert = UsageAlert.objects.get(user=member)
    assert alert.threshold_percent == 80

    _check()

    (told,) = configured.texts("Quota alerts")
    assert told.startswith("Quota alerts: 1 new\n")
    assert f"User #{member.pk}: 80 % of the monthly tokens (warning; " in told
    assert f"/dashboard/users/{member.pk}/" in told
    assert "meter@example.com" not in json.dumps(configured.posts)  # staff follow the link
    # The monitoring state "Quota warning" fires too (any user at 80 %): its own notification.
    assert len(configured.texts("Quota warning: firing")) == 1
    subjects = sorted(m.subject for m in _mails_to_staff())
    assert subjects == [
        "[Witchcraft] Quota alerts: 1 new",
        "[Witchcraft] Quota warning: firing (warning)",
    ]
    assert NotificationState.objects.get(check_key=f"usage_alert:{alert.pk}").state == "notified"

    _check()
    assert len(configured.texts("Quota alerts")) == 1 and len(_mails_to_staff()) == 2

    # Over the limit: a second alert (100 %), told once too.
    UserQuota.objects.filter(user=member).update(tokens_used=limit * 99 // 100)
    with transaction.atomic(), rls.user_context(member, may_record=True):
        quota_consume(user_id=member.pk, tokens=limit // 100, cost=0)
    _check()
    quota_texts = configured.texts("Quota alerts")
    assert len(quota_texts) == 2
    assert quota_texts[1].startswith("Quota alerts: 1 new, 1 at or over the limit\n")
    assert "100 % of the monthly tokens (exceeded;" in quota_texts[1]


@pytest.mark.django_db
def test_old_quota_alerts_are_not_told_and_their_rows_are_pruned(user, settings):
    settings.STAFF_NOTIFY_EMAILS = []
    settings.STAFF_NOTIFY_WEBHOOK_URL = ""
    now = datetime.now(UTC)
    quota = factories.quota_for(user)
    alert = UsageAlert.objects.create(
        user=user,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=quota.period_start,
        value_at_trigger=Decimal(80),
        limit_at_trigger=Decimal(100),
    )
    UsageAlert.objects.filter(pk=alert.pk).update(triggered_at=now - timedelta(days=2))
    NotificationState.objects.create(
        check_key="usage_alert:999999", state="notified", changed_at=now - timedelta(days=3)
    )
    assert notifications.notifications_check(now=now) == {"notifications": 0, "deliveries": 0}
    assert not StaffNotification.objects.filter(state="raised").exists()
    assert not NotificationState.objects.filter(check_key__startswith="usage_alert:").exists()


@pytest.mark.django_db
def test_stale_backups_are_told_and_turning_them_off_resolves(settings):
    """The monitoring page's Backups alert, read in the service context like every check:
    stale fires; PITR_ENABLED off is not firing (resolved), never "stale"."""
    from witchcraft.testing.backups import backup_run, wal_summary

    settings.STAFF_NOTIFY_EMAILS = []
    settings.STAFF_NOTIFY_WEBHOOK_URL = ""
    settings.PITR_ENABLED = True
    backup_run(
        "backup_wal", ago=timedelta(seconds=30), summary=wal_summary(base_age=timedelta(hours=40))
    )
    now = datetime.now(UTC)
    assert notifications.notifications_check(now=now) == {"notifications": 1, "deliveries": 0}
    told = StaffNotification.objects.get(check_key="monitoring:backups")
    assert (told.state, told.title) == ("firing", "Backups: firing (critical)")
    assert "the last base backup is 40 h old (more than 26 h)" in told.body
    assert notifications.notifications_check(now=now) == {"notifications": 0, "deliveries": 0}
    settings.PITR_ENABLED = False
    assert notifications.notifications_check(now=now) == {"notifications": 1, "deliveries": 0}
    assert StaffNotification.objects.filter(
        check_key="monitoring:backups", state="resolved"
    ).exists()


# --- notify_test -------------------------------------------------------------------------


@pytest.mark.django_db
def test_notify_test_sends_to_each_channel_and_names_the_host_only(configured, secret):
    out = StringIO()
    call_command("notify_test", stdout=out)
    assert out.getvalue().splitlines() == [
        "mail: delivered (mail)",
        "webhook: delivered (webhook at 127.0.0.1)",
    ]
    assert secret not in out.getvalue()
    (message,) = mail.outbox
    assert message.to == STAFF and message.subject == "[Witchcraft] Test notification"
    (post,) = configured.posts
    assert post["text"].startswith("Test notification\n")
    assert configured.paths == [f"/services/T01/{secret}"]
    told = StaffNotification.objects.get()
    assert told.state == "test" and told.mail_sent_at and told.webhook_sent_at


@pytest.mark.django_db
def test_notify_test_says_which_channel_failed(configured, secret):
    configured.answers = [500]
    err = StringIO()
    with pytest.raises(CommandError, match="was not delivered"):
        call_command("notify_test", stdout=StringIO(), stderr=err)
    assert err.getvalue() == "webhook: NOT delivered: the webhook at 127.0.0.1 answered 500\n"
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_notify_test_without_a_channel_says_what_to_set(settings):
    settings.STAFF_NOTIFY_EMAILS = []
    settings.STAFF_NOTIFY_WEBHOOK_URL = ""
    with pytest.raises(CommandError, match="STAFF_NOTIFY_EMAILS and/or STAFF_NOTIFY_WEBHOOK_URL"):
        call_command("notify_test")
    assert mail.outbox == [] and not StaffNotification.objects.exists()


@pytest.mark.django_db
def test_notify_test_with_mail_only(settings):
    settings.STAFF_NOTIFY_EMAILS = ["ops@example.com"]
    settings.STAFF_NOTIFY_WEBHOOK_URL = ""
    out = StringIO()
    call_command("notify_test", stdout=out)
    assert out.getvalue().splitlines() == ["mail: delivered (mail)", "webhook: not configured"]
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]


# --- the monitoring page -------------------------------------------------------------------


URL = reverse("dashboard:monitoring")


@pytest.fixture
def staff(client):
    member = User.objects.create_user(email="staff@example.com", password=PASSWORD, is_staff=True)
    client.force_login(member)
    return client


def _notification(**fields) -> StaffNotification:
    defaults = {
        "check_key": ERROR_RATE,
        "state": "firing",
        "title": "High error rate: firing (warning)",
        "body": "High error rate: 7.1 %",
        "channels": ["mail", "webhook"],
        "created_at": datetime.now(UTC),
    }
    return StaffNotification.objects.create(**(defaults | fields))


@pytest.mark.django_db
def test_the_page_shows_the_channels_and_the_last_notifications(staff, configured, secret):
    now = datetime.now(UTC)
    _notification(created_at=now - timedelta(minutes=5), mail_sent_at=now, webhook_sent_at=now)
    _notification(
        state="resolved",
        title="High error rate: resolved",
        created_at=now,
        mail_sent_at=now,
        last_error="webhook: the webhook at 127.0.0.1 answered 500",
    )
    response = staff.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-channels="mail,webhook"' in page
    assert "ops@example.com, oncall@example.com" in page
    assert "webhook at <code>127.0.0.1</code>" in page
    assert secret not in page and "/services/T01/" not in page
    rows = page.split('id="recent-notifications"')[1].split("</table>")[0]
    assert rows.index('data-state="resolved"') < rows.index('data-state="firing"')  # newest first
    assert 'webhook <span class="flag">pending</span>' in rows
    assert "last error: webhook: the webhook at 127.0.0.1 answered 500" in rows


@pytest.mark.django_db
def test_the_page_says_when_nothing_is_configured(staff, settings):
    settings.STAFF_NOTIFY_EMAILS = []
    settings.STAFF_NOTIFY_WEBHOOK_URL = ""
    _notification(channels=[])
    page = staff.get(URL).content.decode()
    assert "No notification channel is configured" in page
    assert "no channel" in page.split('id="recent-notifications"')[1]


@pytest.mark.django_db
def test_the_page_lists_ten_notifications_in_one_query(staff, django_assert_num_queries):
    for minutes in range(15):
        _notification(created_at=datetime.now(UTC) - timedelta(minutes=minutes))
    member = User.objects.get(email="staff@example.com")
    with (
        transaction.atomic(),
        rls.user_context(member),
        django_assert_num_queries(1),
    ):
        overview = notifications.notifications_overview()
    assert len(overview["recent"]) == 10


@pytest.mark.django_db
def test_members_do_not_see_the_monitoring_page(client, user):
    client.force_login(user)
    assert client.get(URL).status_code == 404


# --- row-level security ------------------------------------------------------------------


def _as(context, sql: str):
    with transaction.atomic(), context(), connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else cursor.rowcount


@pytest.mark.django_db
@pytest.mark.parametrize("table", ["staff_notifications", "notification_states"])
def test_staff_read_and_only_the_service_context_writes(user, table):
    staff = factories.UserFactory(is_staff=True)
    _notification()
    NotificationState.objects.create(
        check_key=ERROR_RATE, state="firing", changed_at=datetime.now(UTC)
    )
    count = f"SELECT count(*) FROM {table}"
    assert _as(lambda: rls.user_context(staff), count) == [(1,)]
    assert _as(lambda: rls.user_context(user), count) == [(0,)]
    assert _as(lambda: rls.user_context(None), count) == [(0,)]
    column = "check_key" if table == "notification_states" else "title"
    for who in (staff, user, None):
        assert _as(lambda w=who: rls.user_context(w), f"UPDATE {table} SET {column} = 'x:y'") == 0
        assert _as(lambda w=who: rls.user_context(w), f"DELETE FROM {table}") == 0
    insert = (
        "INSERT INTO notification_states (check_key, state) VALUES ('monitoring:x', 'ok')"
        if table == "notification_states"
        else "INSERT INTO staff_notifications (check_key, state, title, body)"
        " VALUES ('test:x', 'test', 't', 'b')"
    )
    for who in (staff, user):
        with pytest.raises(DatabaseError) as caught:
            _as(lambda w=who: rls.user_context(w), insert)
        assert caught.value.__cause__.sqlstate == "42501"
    assert _as(rls.service_context, insert) == 1


# --- settings --------------------------------------------------------------------------------


def _manage_check(**env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=dict(os.environ, DJANGO_SETTINGS_MODULE="witchcraft.settings", DEBUG="true", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_webhook_url_that_is_not_http_is_refused_without_showing_it():
    done = _manage_check(STAFF_NOTIFY_WEBHOOK_URL="ftp://hooks.example.com/T1/B2/SECRETPART")
    assert done.returncode != 0
    assert "STAFF_NOTIFY_WEBHOOK_URL must be an https://" in done.stderr
    assert "SECRETPART" not in done.stderr + done.stdout


def test_a_staff_address_that_is_not_one_is_refused():
    done = _manage_check(STAFF_NOTIFY_EMAILS="ops@example.com,not-an-address")
    assert done.returncode != 0
    assert "STAFF_NOTIFY_EMAILS: 'not-an-address' is not an email address." in done.stderr


def test_error_reports_hide_the_webhook_address(settings, rf):
    from django.views.debug import get_default_exception_reporter_filter

    settings.STAFF_NOTIFY_WEBHOOK_URL = "https://hooks.example.com/services/T1/B2/SECRETPART"
    reporter = get_default_exception_reporter_filter()
    shown = reporter.get_safe_settings()["STAFF_NOTIFY_WEBHOOK_URL"]
    assert "SECRETPART" not in str(shown)
    request = rf.get("/", STAFF_NOTIFY_WEBHOOK_URL="https://hooks.example.com/x/SECRETPART")
    assert "SECRETPART" not in str(reporter.get_safe_request_meta(request))
    assert "SECRET_KEY" in reporter.get_safe_settings()  # the others still hidden, not dropped


@pytest.mark.browser
@transactional
def test_staff_see_the_notifications_on_a_phone(page, live_server, configured, secret, tmp_path):
    import os

    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    _error_rate_firing(now)
    assert notifications.notifications_check(now=now) == {"notifications": 1, "deliveries": 2}
    told = StaffNotification.objects.get()
    for channel in told.channels:
        notifications.notification_deliver(notification_id=told.pk, channel=channel)
    User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto(f"{live_server.url}/auth/login/?next=/dashboard/monitoring/")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/monitoring/")

    section = page.locator("#staff-notifications")
    assert "webhook at 127.0.0.1" in section.inner_text()
    row = section.locator(f'tr[data-check="{ERROR_RATE}"]')
    assert "High error rate: firing" in row.inner_text()
    assert "mail sent, webhook sent" in row.inner_text()
    assert secret not in page.content()
    box = section.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    section.screenshot(path=str(shots / "dashboard-monitoring-notifications.png"))
