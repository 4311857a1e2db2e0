"""Mails through the job queue (MAIL_IN_BACKGROUND on, as in production): queued after the
commit with no secret in the job's arguments, sent by the worker, retried when SMTP fails.

These tests commit (the request's transaction, then the worker's own connections), like
production does; the queue's tables are emptied around each.
"""

import re
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.db import connection, transaction

from accounts import passwords, recovery
from accounts.models import AuditLog, EmailVerificationToken, PasswordResetToken, User
from accounts.services import user_register
from billing.models import SubscriptionTier, UsageAlert
from billing.services import quota_consume
from witchcraft.operations import jobs
from witchcraft.platform import deferred, rls
from witchcraft.platform.mail import mail_send
from witchcraft.platform.mailers import mailers_from_url
from witchcraft.testing import factories
from witchcraft.testing.queue import clear_queue, queue_text, queued_jobs

PASSWORD = "correct horse battery"
transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def background(settings):
    """Mails through the queue, as in production; the queue empty before and after."""
    settings.MAIL_IN_BACKGROUND = True
    clear_queue()
    yield
    deferred.drain()
    clear_queue()


def _link_token(body: str, path: str) -> str:
    match = re.search(rf"{re.escape(path)}([^/\s]+)/", body)
    assert match, body
    return match.group(1)


@transactional
def test_a_reset_job_carries_the_user_id_and_the_worker_makes_and_mails_the_link(
    background, client
):
    user = factories.UserFactory(email="reset@example.com")
    response = client.post("/auth/password-reset/", {"email": user.email})
    assert response.status_code == 200
    deferred.drain()

    (job,) = queued_jobs()
    assert job["task_name"] == "mail_password_reset" and job["queue_name"] == "mail"
    request_id = response["X-Request-ID"]
    assert job["args"] == {
        "user_id": user.pk,
        "ip": "127.0.0.1",
        "request_id": request_id,
        "actor_id": None,
    }
    assert not PasswordResetToken.objects.exists()  # the worker makes it
    assert mail.outbox == []

    jobs.run_due_jobs(delete_jobs="never")

    (message,) = mail.outbox
    assert message.to == [user.email] and "Reset your password" in message.subject
    raw = _link_token(message.body, "/auth/password-reset/")
    with transaction.atomic():
        assert recovery.password_reset_token_user(raw_token=raw) == user
    # The token exists only as its hash in its table: never in the queue.
    assert raw not in queue_text()
    assert queued_jobs()[0]["status"] == "succeeded"
    # The audit row written by the worker still names the request it came from.
    entry = AuditLog.objects.get(event_type="password_reset_requested")
    assert entry.request_id == request_id and str(entry.ip) == "127.0.0.1"


@transactional
def test_an_unknown_address_queues_nothing_and_gets_the_same_answer(background, client):
    factories.UserFactory(email="known@example.com")
    known = client.post("/auth/password-reset/", {"email": "known@example.com"})
    unknown = client.post("/auth/password-reset/", {"email": "nobody@example.com"})
    deferred.drain()
    assert known.content == unknown.content
    assert [job["task_name"] for job in queued_jobs()] == ["mail_password_reset"]


@transactional
def test_sign_up_queues_one_job_whether_the_address_is_new_or_taken(background, client):
    form = {"email": "new@example.com", "password": "a fresh long passphrase"}
    first = client.post("/auth/register/", form)
    second = client.post("/auth/register/", form)  # now taken
    deferred.drain()
    assert first.content == second.content
    verification, notice = queued_jobs()
    user = User.objects.get(email="new@example.com")
    assert verification["task_name"] == "mail_email_verification"
    assert verification["args"]["user_id"] == user.pk
    assert notice["task_name"] == "send_mail"
    assert notice["args"]["to"] == "new@example.com"
    assert notice["args"]["template"] == "already_registered"
    assert set(notice["args"]["context"]) == {"login_link", "reset_link"}

    jobs.run_due_jobs()

    assert sorted(m.subject for m in mail.outbox) == [
        "[Witchcraft] Confirm your email address",
        "[Witchcraft] Someone tried to create an account with your address",
    ]
    assert queued_jobs() == []  # both succeeded, so both were deleted


@transactional
def test_a_failing_smtp_server_is_retried_and_no_token_outlives_a_failed_mail(background, settings):
    user = factories.UserFactory(email="verify@example.com")
    with transaction.atomic():
        recovery.verification_send(user_id=user.pk, ip="198.51.100.4")
    deferred.drain()
    settings.MAILERS = mailers_from_url("smtp://127.0.0.1:9")  # nothing listens there

    jobs.run_due_jobs()

    (job,) = queued_jobs()
    assert job["status"] == "todo" and job["attempts"] == 1
    assert job["scheduled_at"] > datetime.now(UTC)  # retried after a pause (5 s, then 25...)
    assert mail.outbox == []
    # The token and its audit row went with the failed mail.
    assert not EmailVerificationToken.objects.exists()
    assert not AuditLog.objects.filter(event_type="verification_sent").exists()

    settings.MAILERS = mailers_from_url("memorymail://")
    with connection.cursor() as cursor:  # the pause is over
        cursor.execute("UPDATE procrastinate_jobs SET scheduled_at = now()")
    jobs.run_due_jobs()

    (message,) = mail.outbox
    raw = _link_token(message.body, "/auth/verify/")
    assert EmailVerificationToken.objects.get().user == user
    with transaction.atomic():
        assert recovery.verification_confirm(raw_token=raw) == user.pk
    assert queued_jobs() == []
    assert AuditLog.objects.filter(event_type="verification_sent").count() == 1


@transactional
def test_alert_mails_go_through_the_queue(background):
    member = User.objects.get(pk=user_register(email="meter@example.com", password=PASSWORD))
    limit = SubscriptionTier.objects.get(slug="free").monthly_token_limit
    with transaction.atomic(), rls.user_context(member, may_record=True):
        quota_consume(user_id=member.pk, tokens=limit * 85 // 100, cost=0)
    deferred.drain()
    assert [(j["task_name"], j["args"]) for j in queued_jobs()] == [
        ("mail_quota_alerts", {"user_id": member.pk})
    ]
    assert UsageAlert.objects.get(user=member).notified_at is None

    jobs.run_due_jobs()

    (message,) = mail.outbox
    assert "close to your quota" in message.subject
    assert UsageAlert.objects.get(user=member).notified_at is not None


@transactional
def test_a_notice_job_carries_plain_data_never_the_new_password(background):
    user = factories.UserFactory(full_name="Grace Notice")
    new_password = "an entirely new passphrase"
    with transaction.atomic(), rls.user_context(user):
        passwords.password_change(
            user_id=user.pk, current_password=PASSWORD, new_password=new_password
        )
    deferred.drain()
    (job,) = queued_jobs()
    assert job["task_name"] == "send_mail"
    assert job["args"]["template"] == "password_changed_by_user"
    assert job["args"]["context"]["user"] == {"email": user.email, "full_name": "Grace Notice"}
    assert new_password not in queue_text()

    jobs.run_due_jobs()

    (message,) = mail.outbox
    assert "Grace Notice" in message.body and user.email in message.body


@transactional
def test_a_queue_connection_that_broke_is_replaced(background, caplog):
    """The thread that writes jobs keeps its connection; the database dropping it (a restart,
    an idle timeout) costs no job."""

    def notice(to: str) -> None:
        mail_send(to=to, subject="s", template="password_changed", context={"reset_link": "/"})

    notice("first@example.com")  # no transaction: queued at once
    deferred.wait()
    # The thread's own connection, and only it (other tests' servers share this database).
    thread_pid = deferred._pool.submit(lambda: connection.connection.info.backend_pid).result()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [thread_pid])
        assert cursor.fetchone()[0] is True
    notice("second@example.com")
    deferred.wait()
    assert [job["args"]["to"] for job in queued_jobs()] == [
        "first@example.com",
        "second@example.com",
    ]
    assert "could not queue" not in caplog.text


@pytest.mark.django_db
def test_a_context_the_queue_cannot_store_is_refused_at_once(user):
    with pytest.raises(TypeError):
        mail_send(to=user.email, subject="x", template="password_changed", context={"user": user})


@pytest.mark.django_db
def test_without_the_background_the_work_runs_at_once_in_the_callers_transaction(user):
    """MAIL_IN_BACKGROUND off (the tests' default): the job's function runs now, nothing is
    queued."""
    with transaction.atomic():
        recovery.verification_send(user_id=user.pk)
        assert EmailVerificationToken.objects.filter(user=user).count() == 1
    assert len(mail.outbox) == 1
    assert queued_jobs() == []
