"""Quota alerts at 80 % and 100 %: raised once per period, mailed once after commit, retried
when the mail fails, resolved when the period rolls over or the plan grows."""

from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection, transaction

from accounts.models import User
from accounts.services import user_register
from billing import alerts
from billing.models import SubscriptionTier, UsageAlert
from billing.services import quota_consume, quota_roll_forward
from witchcraft.platform import rls
from witchcraft.platform.mailers import mailers_from_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def member() -> User:
    return User.objects.get(pk=user_register(email="meter@example.com", password="Alerts-9x!q"))


@pytest.fixture
def limit() -> int:
    return SubscriptionTier.objects.get(slug="free").monthly_token_limit


def _consume(user, tokens):
    with transaction.atomic(), rls.user_context(user, may_record=True):
        return quota_consume(user_id=user.pk, tokens=tokens, cost=Decimal(0))


def _open(user):
    return set(
        UsageAlert.objects.filter(user=user, resolved_at__isnull=True).values_list(
            "alert_type", "metric"
        )
    )


def test_each_threshold_fires_once_and_is_mailed_once(member, limit):
    _consume(member, limit * 70 // 100)
    assert _open(member) == set()
    assert mail.outbox == []

    _consume(member, limit * 15 // 100)  # 85 %
    assert _open(member) == {("warning", "tokens")}
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [member.email]
    assert "close to your quota" in mail.outbox[0].subject
    assert "80 % of your monthly tokens" in mail.outbox[0].body
    assert UsageAlert.objects.get(user=member).notified_at is not None

    _consume(member, limit * 5 // 100)  # 90 %: nothing new
    assert len(mail.outbox) == 1

    _consume(member, limit * 10 // 100)  # 100 %
    assert _open(member) == {("warning", "tokens"), ("exceeded", "tokens")}
    assert len(mail.outbox) == 2
    assert "used up your quota" in mail.outbox[1].subject
    assert UsageAlert.objects.filter(user=member).count() == 2


def test_a_failed_mail_leaves_the_alert_to_be_retried(member, limit, settings, caplog):
    settings.MAILERS = mailers_from_url("smtp://127.0.0.1:9")  # nothing listens there
    _consume(member, limit * 85 // 100)
    # The request's work stands (the mail runs after it); the alert waits for a mail.
    assert "alert mail for user" in caplog.text
    alert = UsageAlert.objects.get(user=member)
    assert alert.notified_at is None

    settings.MAILERS = mailers_from_url("memorymail://")
    assert alerts.alerts_notify() == 1
    alert.refresh_from_db()
    assert alert.notified_at is not None
    assert alerts.alerts_notify() == 0  # once


def test_the_alerts_resolve_when_the_period_rolls_over(member, limit):
    _consume(member, limit)
    assert len(_open(member)) == 2
    with connection.cursor() as cursor:  # the owner ends the period
        cursor.execute(
            "UPDATE user_quotas SET period_start = period_start - interval '1 month',"
            " period_end = now() - interval '1 second' WHERE user_id = %s",
            [member.pk],
        )
        cursor.execute(
            "UPDATE usage_alerts SET period_start = period_start - interval '1 month'"
            " WHERE user_id = %s",
            [member.pk],
        )
    with transaction.atomic(), rls.user_context(member):
        assert quota_roll_forward(user_id=member.pk) is True
    assert _open(member) == set()


def test_a_plan_that_grows_resolves_them_and_they_fire_again_on_a_new_crossing(member, limit):
    _consume(member, limit * 85 // 100)
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT change_user_tier(%s, 'pro')", [member.pk])
    assert _open(member) == set()

    pro = SubscriptionTier.objects.get(slug="pro").monthly_token_limit
    _consume(member, pro * 81 // 100)
    assert _open(member) == {("warning", "tokens")}
    alert = UsageAlert.objects.get(user=member, alert_type="warning")
    assert alert.limit_at_trigger == pro
    assert alert.notified_at is not None  # mailed again, for the new crossing
    assert len(mail.outbox) == 2


def test_only_the_service_context_marks_alerts_notified(member, limit):
    from django.db import DatabaseError

    _consume(member, limit * 85 // 100)
    alert = UsageAlert.objects.get(user=member)
    with (
        pytest.raises(DatabaseError, match="only the service context"),
        transaction.atomic(),
        rls.user_context(member),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT mark_alerts_notified(ARRAY[%s]::bigint[])", [alert.pk])


def test_the_command_catches_up_on_mails_that_failed(member, limit, settings):
    from io import StringIO

    from django.core.management import CommandError, call_command

    settings.MAILERS = mailers_from_url("smtp://127.0.0.1:9")
    _consume(member, limit * 85 // 100)
    with pytest.raises(CommandError, match="send_alert_mails"):
        call_command("send_alert_mails", stdout=StringIO())

    settings.MAILERS = mailers_from_url("memorymail://")
    out = StringIO()
    call_command("send_alert_mails", stdout=out)
    assert out.getvalue().strip() == "alerts_mailed: 1"
    assert len(mail.outbox) == 1
