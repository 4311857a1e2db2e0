"""One way to make a user: every path that creates an account (the sign-up page, the API,
``manage.py createsuperuser``, the admin's "Add user", ``seed_demo``, the UserManager) calls
``create_user_with_profile``, and the account has the same rows whichever it took: a profile,
the quota and the free subscription of the current month, and a ``user_created`` audit row.

That the SQL function really ran is read from PostgreSQL's own count of its calls in the
test's transaction (``pg_stat_xact_user_functions``, with ``track_functions`` on).
"""

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse

from accounts import audit
from accounts.models import User
from billing.models import SubscriptionTier
from witchcraft.demo.plan import DemoOptions
from witchcraft.demo.progress import Progress
from witchcraft.demo.seeder import seed_demo
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "a long and unusual passphrase"
ADD = "/admin/accounts/user/add/"


CALLS = (
    "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions"
    " WHERE schemaname = 'public' AND funcname = 'create_user_with_profile'"
)


@pytest.fixture
def registrations():
    """How many times create_user_with_profile has run since the test began. (The backend's
    pending counts may still hold earlier transactions' calls: they are flushed only between
    transactions, never inside the test's, so the difference is this test's.)"""
    with connection.cursor() as cursor:
        cursor.execute("SET track_functions = 'pl'")  # undone with the test's transaction
        cursor.execute(CALLS)
        before = cursor.fetchone()[0]

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(CALLS)
            return cursor.fetchone()[0] - before

    return count


def _one(sql: str, params) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    assert len(rows) == 1, (sql, params, rows)
    return rows[0]


def registration_rows(user_id: int) -> dict:
    """What registration made for the user, in a form every path must match."""
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    free = SubscriptionTier.objects.get(slug="free")
    return {
        "profile": _one("SELECT count(*) FROM user_profiles WHERE user_id = %s", [user_id]),
        "quota": _one(
            "SELECT tokens_limit = %s AND cost_limit = %s AND tokens_used = 0,"
            " period_start = %s FROM user_quotas WHERE user_id = %s",
            [free.monthly_token_limit, free.monthly_cost_limit, month, user_id],
        ),
        "subscription": _one(
            "SELECT t.slug, s.status, s.billing_cycle, s.current_period_start = %s"
            " FROM user_subscriptions s JOIN subscription_tiers t ON t.id = s.tier_id"
            " WHERE s.user_id = %s",
            [month, user_id],
        ),
        "user_created": _one(
            "SELECT details::text, target_type, target_id = user_id::text FROM audit_logs"
            " WHERE event_type = 'user_created' AND user_id = %s",
            [user_id],
        ),
    }


EXPECTED = {
    "profile": (1,),
    "quota": (True, True),
    "subscription": ("free", "active", "monthly", True),
    "user_created": (json.dumps({"tier": "free"}), "user", True),
}


def _flags(user_id: int) -> tuple[bool, bool]:
    return _one("SELECT is_staff, is_superuser FROM users WHERE id = %s", [user_id])


def _created_by(user_id: int) -> int | None:
    return _one(
        "SELECT actor_id FROM audit_logs WHERE event_type = 'user_created' AND user_id = %s",
        [user_id],
    )[0]


def _admin_add(client, **fields):
    data = {
        "email": "added@example.com",
        "full_name": "Added Person",
        "usable_password": "true",
        "password1": PASSWORD,
        "password2": PASSWORD,
        **fields,
    }
    return client.post(ADD, data)


def _superuser() -> User:
    return UserFactory(email="boss@example.com", is_staff=True, is_superuser=True)


# --- each way ----------------------------------------------------------------------------------
def test_the_sign_up_page(client, registrations):
    response = client.post(
        reverse("accounts:register"),
        {"email": "page@example.com", "password": PASSWORD, "full_name": "Page"},
    )
    assert response.status_code == 200
    user = User.objects.get(email="page@example.com")
    assert registrations() == 1
    assert registration_rows(user.pk) == EXPECTED
    assert _flags(user.pk) == (False, False)


def test_the_api(client, registrations):
    response = client.post(
        "/api/v1/auth/register",
        json.dumps({"email": "api@example.com", "password": PASSWORD}),
        content_type="application/json",
    )
    assert response.status_code == 202
    user = User.objects.get(email="api@example.com")
    assert registrations() == 1
    assert registration_rows(user.pk) == EXPECTED


def test_createsuperuser(monkeypatch, registrations):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command(
        "createsuperuser", "--noinput", "--email", "Root@Example.com", "--full_name", "Root",
        verbosity=0,
    )  # fmt: skip
    user = User.objects.get(email="root@example.com")
    assert registrations() == 1
    assert registration_rows(user.pk) == EXPECTED
    assert _flags(user.pk) == (True, True)
    assert user.check_password(PASSWORD)
    # The flags were set by the service context, and audited.
    [flagged] = audit_rows(audit.STAFF_FLAG_CHANGED, user.pk)
    assert flagged["new"] == {"is_staff": True, "is_superuser": True}
    assert flagged["request_id"].startswith("job-")
    # The operator vouched for the address: no "confirm your email" banner for ever.
    assert user.email_verified_at is not None


def test_a_superuser_is_verified_a_member_is_not(client):
    root = User.objects.create_superuser(email="root2@example.com", password=PASSWORD)
    member = User.objects.create_user(email="member2@example.com", password=PASSWORD)
    assert root.email_verified_at is not None and member.email_verified_at is None
    client.force_login(root)
    assert "confirm your email" not in client.get(reverse("selfservice:me")).text
    client.force_login(member)
    assert "confirm your email" in client.get(reverse("selfservice:me")).text


def audit_rows(event: str, user_id: int) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT details::text, request_id FROM audit_logs"
            " WHERE event_type = %s AND user_id = %s",
            [event, user_id],
        )
        return [{**json.loads(details), "request_id": rid} for details, rid in cursor.fetchall()]


def test_the_admins_add_user_as_a_superuser(client, registrations):
    boss = _superuser()
    client.force_login(boss)
    response = _admin_add(client)
    user = User.objects.get(email="added@example.com")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_change", args=[user.pk])
    assert registrations() == 1
    assert registration_rows(user.pk) == EXPECTED
    assert _flags(user.pk) == (False, False)
    assert user.check_password(PASSWORD)
    assert user.full_name == "Added Person"
    assert _created_by(user.pk) == boss.pk


def test_seed_demo(registrations):
    """Demo people are registered by the function, then dated: their registration rows are
    those of a sign-up at ``date_joined`` (the free subscription the first of their plans)."""
    result = seed_demo(
        DemoOptions(users=3, days=2, now=datetime.now(UTC).replace(microsecond=0)),
        progress=Progress(lambda _: None, live=False),
    )
    assert registrations() == result.users == 3
    free = SubscriptionTier.objects.get(slug="free")
    for user in User.objects.all():
        assert _one("SELECT count(*) FROM user_profiles WHERE user_id = %s", [user.pk]) == (1,)
        assert _one("SELECT count(*) FROM user_quotas WHERE user_id = %s", [user.pk]) == (1,)
        first = _one(
            "SELECT tier_id, created_at FROM user_subscriptions WHERE user_id = %s"
            " ORDER BY created_at, id LIMIT 1",
            [user.pk],
        )
        assert first == (free.pk, user.date_joined)
        with transaction.atomic(), rls.service_context():
            created = _one(
                "SELECT details::text, target_type, target_id = user_id::text, created_at"
                " FROM (SELECT * FROM audit_logs UNION ALL"
                " SELECT * FROM archived_audit_logs(%s, NULL, NULL)) a"
                " WHERE event_type = 'user_created' AND user_id = %s",
                [user.pk, user.pk],
            )
        assert created == (*EXPECTED["user_created"], user.date_joined)


def test_the_user_manager(registrations):
    user = User.objects.create_user(email="made@example.com", password=PASSWORD)
    boss = User.objects.create_superuser(email="root@example.com", password=PASSWORD)
    assert registrations() == 2
    assert registration_rows(user.pk) == registration_rows(boss.pk) == EXPECTED
    assert (_flags(user.pk), _flags(boss.pk)) == ((False, False), (True, True))
    assert _created_by(user.pk) == user.pk


def test_the_user_manager_writes_other_fields_after_registration():
    verified = datetime(2026, 11, 30, 12, tzinfo=UTC)
    user = User.objects.create_user(
        email="verified@example.com", password=None, email_verified_at=verified
    )
    assert user.email_verified_at == verified
    assert not user.has_usable_password()
    assert registration_rows(user.pk) == EXPECTED


# --- the admin's add page: who may --------------------------------------------------------------
def _staff(*codenames: str) -> User:
    member = UserFactory(email="staff@example.com", is_staff=True)
    member.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return member


def test_staff_with_the_add_permission_add_a_plain_user(client, registrations):
    member = _staff("add_user", "view_user", "change_user")
    client.force_login(member)
    assert client.get(ADD).status_code == 200
    assert "is_staff" not in client.get(ADD).context["adminform"].form.fields
    response = _admin_add(client, is_staff="on", is_superuser="on")  # not fields of theirs
    user = User.objects.get(email="added@example.com")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_change", args=[user.pk])
    assert registration_rows(user.pk) == EXPECTED
    assert _flags(user.pk) == (False, False)
    assert _created_by(user.pk) == member.pk
    assert registrations() == 1


def test_staff_without_the_add_permission_get_403_and_nothing_is_written(client, registrations):
    client.force_login(_staff("view_user", "change_user"))
    assert client.get(ADD).status_code == 403
    assert _admin_add(client).status_code == 403
    assert not User.objects.filter(email="added@example.com").exists()
    assert registrations() == 0


def test_a_superuser_may_add_staff_through_the_add_page(client):
    client.force_login(_superuser())
    response = _admin_add(client, is_staff="on")
    assert response.status_code == 302
    user = User.objects.get(email="added@example.com")
    assert _flags(user.pk) == (True, False)
    assert registration_rows(user.pk) == EXPECTED
    assert [row["new"] for row in audit_rows(audit.STAFF_FLAG_CHANGED, user.pk)] == [
        {"is_staff": True, "is_superuser": False}
    ]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"email": "not-an-address"}, "Enter a valid email address."),
        ({"password2": "something else entirely"}, "The two password fields"),
    ],
)
def test_bad_input_on_the_add_page_is_a_form_error_and_writes_nothing(client, fields, error):
    client.force_login(_superuser())
    users = User.objects.count()
    response = _admin_add(client, **fields)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert User.objects.count() == users


def test_a_taken_address_on_the_add_page_is_a_form_error(client):
    UserFactory(email="added@example.com")
    client.force_login(_superuser())
    response = _admin_add(client, email="ADDED@example.com")
    assert response.status_code == 200
    assert "An account with this email address already exists." in response.content.decode()
    assert User.objects.filter(email="added@example.com").count() == 1
