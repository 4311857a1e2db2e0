"""The database refuses bad rows of the accounts tables (users, profiles, tokens, audit logs)
naming the constraint, and refuses to delete a user with history."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from billing.models import PaymentHistory
from witchcraft.testing.factories import AuditLogFactory
from witchcraft.tests.schema.db import fetchall
from witchcraft.tests.schema.rows import (
    EARLIER,
    NOT_OBJECTS,
    T0,
    Ref,
    assert_refused,
    bad,
    plain_user,
    sha256,
)

pytestmark = pytest.mark.django_db

BAD_ROWS = [
    # accounts: users
    bad("mixed-case email", "users", {"email": "Carol@Example.com"}, "users_email_normalized"),
    bad("email with spaces", "users", {"email": " carol@example.com"}, "users_email_normalized"),
    bad("duplicate email", "users", {"email": Ref("user_email")}, "users_email_key"),
    # accounts: user_profiles
    *[
        bad(
            f"preferences {kind}",
            "user_profiles",
            {"preferences": value},
            "user_profiles_preferences_object",
        )
        for kind, value in NOT_OBJECTS.items()
    ],
    bad("second profile", "user_profiles", {"user_id": Ref("other_user")}, "user_profiles_pkey"),
    # accounts: tokens
    *[
        bad(f"{table} {what}", table, {"token_hash": value}, f"{table}_token_hash_sha256")
        for table in ("access_tokens", "password_reset_tokens", "email_verification_tokens")
        for what, value in (
            ("raw token", "wc_live_abcdef"),
            ("upper-case digest", sha256("x").upper()),
            ("short digest", sha256("x")[:63]),
            ("non-hex digest", "g" * 64),
        )
    ],
    bad(
        "token expiring before it is made",
        "access_tokens",
        {"expires_at": EARLIER},
        "access_tokens_expiry_after_creation",
    ),
    bad(
        "token expiring as it is made",
        "access_tokens",
        {"expires_at": T0},
        "access_tokens_expiry_after_creation",
    ),
    bad("token without a name", "access_tokens", {"name": ""}, "access_tokens_name_not_empty"),
    bad(
        "duplicate token hash",
        "access_tokens",
        {"token_hash": sha256("an existing token")},
        "idx_access_tokens_token_hash",
    ),
    bad(
        "reset token expiring before it is made",
        "password_reset_tokens",
        {"expires_at": EARLIER},
        "password_reset_tokens_expiry",
    ),
    bad(
        "verification token expiring before it is made",
        "email_verification_tokens",
        {"expires_at": EARLIER},
        "email_verification_tokens_expiry",
    ),
    # accounts: audit_logs
    bad("audit severity 'error'", "audit_logs", {"severity": "error"}, "audit_logs_severity_valid"),
    bad(
        "audit severity upper-case",
        "audit_logs",
        {"severity": "WARNING"},
        "audit_logs_severity_valid",
    ),
    bad(
        "audit without event type",
        "audit_logs",
        {"event_type": ""},
        "audit_logs_event_type_not_empty",
    ),
    *[
        bad(f"audit details {kind}", "audit_logs", {"details": value}, "audit_logs_details_object")
        for kind, value in NOT_OBJECTS.items()
    ],
]


@pytest.mark.parametrize(("table", "overrides", "constraint"), BAD_ROWS)
def test_a_bad_row_is_refused_naming_its_constraint(world, table, overrides, constraint):
    assert_refused(world, table, overrides, constraint)


# --- protected history --------------------------------------------------------------------------


def _with_payment(user):
    PaymentHistory.objects.create(
        user=user,
        amount=Decimal("12.00"),
        status="succeeded",
        payment_provider="stripe",
        provider_payment_id=f"pi_{user.id}",
    )


HISTORY = {
    "payment_history": (_with_payment, r"payment_history_user_id_\w+_fk_users_id"),
    "audit_logs": (lambda user: AuditLogFactory(user=user), r"audit_logs_user_id_\w+_fk_users_id"),
    "audit_logs (as actor)": (
        lambda user: AuditLogFactory(user=None, actor=user, event_type="impersonation_started"),
        r"audit_logs_actor_id_\w+_fk_users_id",
    ),
}


@pytest.mark.parametrize("history", HISTORY)
def test_django_refuses_to_delete_a_user_with_history(history):
    make, _ = HISTORY[history]
    user = plain_user()
    make(user)
    with pytest.raises(ProtectedError), transaction.atomic():
        user.delete()
    assert type(user).objects.filter(pk=user.pk).exists()


@pytest.mark.parametrize("history", HISTORY)
def test_the_database_refuses_to_delete_a_user_with_history(history):
    make, constraint = HISTORY[history]
    user = plain_user()
    make(user)
    # The foreign keys are DEFERRABLE INITIALLY DEFERRED: check now rather than at commit.
    with (
        pytest.raises(IntegrityError, match=f'"{constraint}"'),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("DELETE FROM users WHERE id = %s", [user.id])
    assert fetchall("SELECT count(*) FROM users WHERE id = %s", [user.id]) == [(1,)]


def test_a_user_without_history_can_be_deleted():
    user = plain_user()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("DELETE FROM users WHERE id = %s", [user.id])
    assert fetchall("SELECT count(*) FROM users WHERE id = %s", [user.id]) == [(0,)]
