"""The registration flow: create_user_with_profile, called by accounts.services.user_register."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection, transaction

from accounts import services
from accounts.models import AuditLog, User, UserProfile
from billing.models import SubscriptionTier, UserQuota, UserSubscription
from witchcraft.platform import rls

pytestmark = pytest.mark.django_db
PASSWORD = "a long and unusual passphrase"


def _register_anonymously(**kwargs) -> int:
    with transaction.atomic(), rls.user_context(AnonymousUser()):
        return services.user_register(**kwargs)


def test_registration_creates_the_whole_account_in_one_go():
    user_id = _register_anonymously(
        email="  New.Person@Example.COM ", password=PASSWORD, full_name="New Person"
    )
    user = User.objects.get(pk=user_id)
    assert user.email == "new.person@example.com"
    assert user.check_password(PASSWORD)
    assert not user.is_staff and not user.is_superuser
    assert UserProfile.objects.get(user=user).display_name == "New Person"

    free = SubscriptionTier.objects.get(slug="free")
    quota = UserQuota.objects.get(user=user)
    now = datetime.now(UTC)
    assert (quota.tokens_limit, quota.cost_limit) == (
        free.monthly_token_limit,
        free.monthly_cost_limit,
    )
    assert quota.tokens_used == 0
    assert quota.period_start == now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert quota.period_start < now < quota.period_end

    subscription = UserSubscription.objects.get(user=user)
    assert (subscription.tier_id, subscription.status) == (free.id, "active")

    audit = AuditLog.objects.get(user=user)
    assert audit.event_type == "user_created"
    assert audit.details == {"tier": "free"}


def test_the_password_reaches_the_database_only_as_a_hash():
    user_id = _register_anonymously(email="hash@example.com", password=PASSWORD)
    stored = User.objects.get(pk=user_id).password
    assert PASSWORD not in stored
    assert "$" in stored


def test_a_taken_email_is_refused_whatever_its_case_and_nothing_is_written():
    _register_anonymously(email="taken@example.com", password=PASSWORD)
    users, audits = User.objects.count(), AuditLog.objects.count()
    with pytest.raises(services.RegistrationError) as refused:
        _register_anonymously(email="TAKEN@example.com", password=PASSWORD)
    assert (refused.value.field, refused.value.message) == ("email", services.EMAIL_TAKEN)
    assert (User.objects.count(), AuditLog.objects.count()) == (users, audits)


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        ("not-an-email", PASSWORD, "email"),
        ("ok@example.com", "short", "password"),
        ("ok@example.com", "1234567890123", "password"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(email, password, field):
    with pytest.raises(services.RegistrationError) as refused:
        _register_anonymously(email=email, password=password)
    assert refused.value.field == field
    assert not User.objects.filter(email=email).exists()


def test_the_function_refuses_a_raw_password():
    with (
        pytest.raises(DatabaseError, match="never a raw password"),
        transaction.atomic(),
        rls.user_context(AnonymousUser()),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT create_user_with_profile('raw@example.com', 'hunter2', '')")


def test_the_runtime_role_cannot_insert_users_directly():
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        rls.user_context(AnonymousUser()),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO users (email, password, full_name, is_active, is_staff, is_superuser,"
            " date_joined) VALUES ('sneaky@example.com', '!', '', true, true, true, now())"
        )
