"""Row-level security, cell by cell: every protected table x command x actor.

Each test builds the same small world as the migration role (the test's own connection, which
bypasses RLS): users A and B and a staff member S, each with one row in every protected table.
Then it runs raw SQL as ``witchcraft_app`` inside ``rls.user_context`` for each actor:

- owner = A, other = B, anonymous = nobody signed in, admin = S (``is_staff``);
- SELECT must return exactly the rows the actor may see;
- INSERT / UPDATE / DELETE aimed at A's row must succeed where ``EXPECTED`` says so and be
  refused everywhere else. Refused means SQLSTATE 42501 (no privilege, or "new row violates
  row-level security policy") or a statement that touched no row. Any other error is a wrong
  cell too: the statements are valid, so a constraint error means the security layer let them
  through to the data.

Every write runs in its own savepoint and is rolled back, so each cell sees the same data. All
wrong cells of a table are collected into one assertion message.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import DatabaseError, connection, transaction

from accounts.models import (
    AccessToken,
    EmailVerificationToken,
    PasswordResetToken,
    ServiceCredential,
    User,
    UserProfile,
)
from agents.models import AgentFeedback, AgentToolCall
from billing.models import PaymentHistory, SubscriptionTier, UsageAlert, UserSubscription
from usage.models import AIModel, AIProvider, AIUsageDaily, AIUsageMonthly, _UsageTotals
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

ACTORS = ("owner", "other", "anonymous", "admin")
COMMANDS = ("select", "insert", "update", "delete")
OK, REFUSED = "ok", "refused"

# Who may do what to user A's row. owner = A, other = B, admin = S (staff), anonymous = nobody.
# select: whose eyes see A's row (everyone sees their own row when "owner" is listed);
# writes: who succeeds. Every actor not listed must be refused.
# fmt: off
EXPECTED: dict[str, tuple[str, str, str, str]] = {
    #  table                        select          insert   update          delete
    "users":                      ("owner admin", "",      "owner admin", ""),
    "user_profiles":              ("owner admin", "",      "owner admin", ""),
    "access_tokens":              ("owner admin", "owner", "owner admin", ""),
    "password_reset_tokens":      ("admin",       "",      "",            ""),
    "email_verification_tokens":  ("owner admin", "",      "",            ""),
    "audit_logs":                 ("owner admin", "",      "",            ""),
    "ai_usage_requests":          ("owner admin", "",      "",            ""),
    "ai_usage_daily":             ("owner admin", "",      "",            ""),
    "ai_usage_monthly":           ("owner admin", "",      "",            ""),
    "ai_usage_request_keys":      ("owner admin", "",      "",            ""),
    "agent_sessions":             ("owner admin", "owner", "owner admin", ""),
    "agent_messages":             ("owner admin", "owner", "",            ""),
    "agent_tool_calls":           ("owner admin", "owner", "owner",       ""),
    "agent_feedback":             ("owner admin", "owner", "owner",       "owner"),
    "user_subscriptions":         ("owner admin", "",      "",            ""),
    "user_quotas":                ("owner admin", "",      "",            ""),
    "payment_history":            ("owner admin", "",      "",            ""),
    "usage_alerts":               ("owner admin", "",      "owner admin", ""),
    # Owned by the staff member who issued it (created_by); written only by its SQL functions.
    "service_credentials":        ("admin",       "",      "",            ""),
}
# fmt: on

_COUNTERS = ", ".join(_UsageTotals.COUNTERS)
_ZEROS = ", ".join("0" for _ in _UsageTotals.COUNTERS)

# The statements each actor attempts on A's row: (INSERT, UPDATE, DELETE). Every INSERT is a
# valid row for A (the allowed ones must succeed); every UPDATE and DELETE targets A's row(s).
STATEMENTS: dict[str, tuple[str, str, str]] = {
    "users": (
        "INSERT INTO users (email, password, full_name, is_active, is_staff, is_superuser,"
        " date_joined) VALUES ('new-' || %(a)s || '@example.com', '!', '', true, false, false,"
        " now())",
        "UPDATE users SET full_name = 'changed' WHERE id = %(a)s",
        "DELETE FROM users WHERE id = %(a)s",
    ),
    "user_profiles": (
        "INSERT INTO user_profiles (user_id, display_name, avatar_url, company, timezone, locale,"
        " preferences) VALUES (%(a)s, 'new', '', '', 'UTC', 'en', '{}')",
        "UPDATE user_profiles SET display_name = 'changed' WHERE user_id = %(a)s",
        "DELETE FROM user_profiles WHERE user_id = %(a)s",
    ),
    "access_tokens": (
        "INSERT INTO access_tokens (user_id, name, token_hash, prefix, scopes, expires_at)"
        " VALUES (%(a)s, 'new', %(new_hash)s, 'wc_new', '{}', now() + interval '30 days')",
        "UPDATE access_tokens SET name = 'renamed' WHERE user_id = %(a)s",
        "DELETE FROM access_tokens WHERE user_id = %(a)s",
    ),
    "password_reset_tokens": (
        "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at)"
        " VALUES (%(a)s, %(new_hash)s, now() + interval '1 hour')",
        "UPDATE password_reset_tokens SET used_at = clock_timestamp() WHERE user_id = %(a)s",
        "DELETE FROM password_reset_tokens WHERE user_id = %(a)s",
    ),
    "email_verification_tokens": (
        "INSERT INTO email_verification_tokens (user_id, token_hash, email, expires_at)"
        " VALUES (%(a)s, %(new_hash)s, 'new@example.com', now() + interval '1 day')",
        "UPDATE email_verification_tokens SET used_at = clock_timestamp() WHERE user_id = %(a)s",
        "DELETE FROM email_verification_tokens WHERE user_id = %(a)s",
    ),
    "audit_logs": (
        "INSERT INTO audit_logs (user_id, event_type, severity, user_agent, request_id,"
        " target_type, target_id, details) VALUES (%(a)s, 'forged', 'info', '', '', '', '', '{}')",
        "UPDATE audit_logs SET details = '{\"tampered\": true}' WHERE user_id = %(a)s",
        "DELETE FROM audit_logs WHERE user_id = %(a)s",
    ),
    "ai_usage_requests": (
        "INSERT INTO ai_usage_requests (id, created_at, user_id, provider_id, model_id,"
        " request_id) VALUES (%(new_usage_id)s, now(), %(a)s, %(provider)s, %(model)s, 'forged')",
        "UPDATE ai_usage_requests SET cost = 0 WHERE user_id = %(a)s",
        "DELETE FROM ai_usage_requests WHERE user_id = %(a)s",
    ),
    "ai_usage_daily": (
        f"INSERT INTO ai_usage_daily (user_id, usage_date, provider_id, model_id, {_COUNTERS})"
        f" VALUES (%(a)s, current_date + 1, %(provider)s, %(model)s, {_ZEROS})",
        "UPDATE ai_usage_daily SET cost = 0 WHERE user_id = %(a)s",
        "DELETE FROM ai_usage_daily WHERE user_id = %(a)s",
    ),
    "ai_usage_monthly": (
        f"INSERT INTO ai_usage_monthly (user_id, year, month, {_COUNTERS})"
        f" VALUES (%(a)s, 2001, 1, {_ZEROS})",
        "UPDATE ai_usage_monthly SET cost = 0 WHERE user_id = %(a)s",
        "DELETE FROM ai_usage_monthly WHERE user_id = %(a)s",
    ),
    "ai_usage_request_keys": (
        "INSERT INTO ai_usage_request_keys (usage_id, user_id, request_id, created_at)"
        " VALUES (%(new_usage_id)s, %(a)s, 'forged', now())",
        "UPDATE ai_usage_request_keys SET request_id = 'tampered' WHERE user_id = %(a)s",
        "DELETE FROM ai_usage_request_keys WHERE user_id = %(a)s",
    ),
    "agent_sessions": (
        # Only the columns granted to the runtime role; counters and totals belong to the flow.
        "INSERT INTO agent_sessions (user_id, title, agent_name, model_id, metadata)"
        " VALUES (%(a)s, 'new', 'assistant', NULL, '{}')",
        "UPDATE agent_sessions SET title = 'renamed' WHERE user_id = %(a)s",
        "DELETE FROM agent_sessions WHERE user_id = %(a)s",
    ),
    "agent_messages": (
        "INSERT INTO agent_messages (session_id, user_id, role, content, position, input_tokens,"
        " output_tokens, metadata) VALUES (%(a_session)s, %(a)s, 'user', 'new', 1000, 0, 0, '{}')",
        "UPDATE agent_messages SET content = 'edited' WHERE user_id = %(a)s",
        "DELETE FROM agent_messages WHERE user_id = %(a)s",
    ),
    "agent_tool_calls": (
        "INSERT INTO agent_tool_calls (session_id, user_id, tool_name, arguments, status, error)"
        " VALUES (%(a_session)s, %(a)s, 'search', '{}', 'pending', '')",
        "UPDATE agent_tool_calls SET status = 'success' WHERE user_id = %(a)s",
        "DELETE FROM agent_tool_calls WHERE user_id = %(a)s",
    ),
    "agent_feedback": (
        # A's existing feedback rates a message, so a session-level rating is not a duplicate.
        "INSERT INTO agent_feedback (session_id, user_id, rating, comment, category)"
        " VALUES (%(a_session)s, %(a)s, 5, '', '')",
        "UPDATE agent_feedback SET rating = 1 WHERE user_id = %(a)s",
        "DELETE FROM agent_feedback WHERE user_id = %(a)s",
    ),
    "user_subscriptions": (
        "INSERT INTO user_subscriptions (user_id, tier_id, status, billing_cycle,"
        " current_period_start, current_period_end, cancel_at_period_end, payment_provider,"
        " provider_customer_id, provider_subscription_id) VALUES (%(a)s, %(free_tier)s,"
        " 'canceled', 'monthly', now(), now() + interval '1 month', false, '', '', '')",
        "UPDATE user_subscriptions SET cancel_at_period_end = true WHERE user_id = %(a)s",
        "DELETE FROM user_subscriptions WHERE user_id = %(a)s",
    ),
    "user_quotas": (
        # user_id is the primary key: refused before the duplicate could matter.
        "INSERT INTO user_quotas (user_id, tokens_limit, tokens_used, cost_limit, cost_used,"
        " period_start, period_end) VALUES (%(a)s, 1, 0, 1, 0, now(), now() + interval '1 month')",
        "UPDATE user_quotas SET tokens_limit = tokens_limit + 1000000 WHERE user_id = %(a)s",
        "DELETE FROM user_quotas WHERE user_id = %(a)s",
    ),
    "payment_history": (
        "INSERT INTO payment_history (user_id, amount, currency, status, description,"
        " payment_provider, provider_payment_id) VALUES (%(a)s, 9.99, 'USD', 'succeeded', '',"
        " 'stripe', 'forged-' || %(a)s)",
        "UPDATE payment_history SET status = 'refunded' WHERE user_id = %(a)s",
        "DELETE FROM payment_history WHERE user_id = %(a)s",
    ),
    "usage_alerts": (
        "INSERT INTO usage_alerts (user_id, alert_type, metric, threshold_percent, period_start,"
        " value_at_trigger, limit_at_trigger) VALUES (%(a)s, 'exceeded', 'cost', 100,"
        " date_trunc('month', now()), 1, 1)",
        "UPDATE usage_alerts SET acknowledged_at = clock_timestamp() WHERE user_id = %(a)s",
        "DELETE FROM usage_alerts WHERE user_id = %(a)s",
    ),
    "service_credentials": (
        "INSERT INTO service_credentials (name, prefix, token_hash, scopes, created_by_id,"
        " created_at, expires_at) VALUES ('forged', 'wcs_new', %(new_hash)s, '{usage.record}',"
        " %(a)s, now(), now() + interval '30 days')",
        "UPDATE service_credentials SET revoked_at = NULL, expires_at = expires_at + interval"
        " '1 year' WHERE created_by_id = %(a)s",
        "DELETE FROM service_credentials WHERE created_by_id = %(a)s",
    ),
}


def _owner_column(table: str) -> str:
    return {"users": "id", "service_credentials": "created_by_id"}.get(table, "user_id")


@dataclass
class World:
    a: User
    b: User
    s: User
    sessions: dict[int, int]  # user id -> that user's agent session id
    messages: dict[int, int]  # user id -> that user's agent message id
    params: dict[str, object]

    def actor(self, name: str):
        return {"owner": self.a, "other": self.b, "anonymous": AnonymousUser(), "admin": self.s}[
            name
        ]


def _hex() -> str:
    return secrets.token_hex(32)


def _rows_for(user: User, *, model: AIModel, tier: SubscriptionTier) -> tuple[int, int]:
    """One row in every protected table for ``user``; returns (session id, message id)."""
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    UserProfile.objects.create(user=user, display_name=user.full_name[:120])
    AccessToken.objects.create(
        user=user, name="cli", token_hash=_hex(), prefix="wc_", expires_at=now + timedelta(30)
    )
    PasswordResetToken.objects.create(
        user=user, token_hash=_hex(), expires_at=now + timedelta(hours=1)
    )
    EmailVerificationToken.objects.create(
        user=user, token_hash=_hex(), email=user.email, expires_at=now + timedelta(days=1)
    )
    factories.AuditLogFactory(user=user)
    factories.usage_request(user=user, model=model)  # also its ai_usage_request_keys row
    totals = {"request_count": 1, "success_count": 1, "total_tokens": 1500}
    AIUsageDaily.objects.create(
        user=user, usage_date=now.date(), provider_id=model.provider_id, model=model, **totals
    )
    AIUsageMonthly.objects.create(user=user, year=now.year, month=now.month, **totals)
    session = factories.AgentSessionFactory(user=user)
    message = factories.AgentMessageFactory(session=session, position=1)
    AgentToolCall.objects.create(session=session, user=user, tool_name="search")
    AgentFeedback.objects.create(session=session, message=message, user=user, rating=4)
    subscription = UserSubscription.objects.create(
        user=user,
        tier=tier,
        status="active",
        current_period_start=month_start,
        current_period_end=month_end,
    )
    factories.quota_for(user, tier.slug)
    PaymentHistory.objects.create(
        user=user,
        subscription=subscription,
        amount=tier.monthly_price,
        status="succeeded",
        payment_provider="stripe",
        provider_payment_id=f"pi_{uuid.uuid4().hex}",
    )
    UsageAlert.objects.create(
        user=user,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=month_start,
        value_at_trigger=Decimal(80),
        limit_at_trigger=Decimal(100),
    )
    ServiceCredential.objects.create(
        name="backend",
        prefix="wcs_",
        token_hash=_hex(),
        scopes=["usage.record"],
        created_by=user,
        expires_at=now + timedelta(days=30),
    )
    return session.pk, message.pk


def _new_user(**fields) -> User:
    # password=None: an unusable password, so no slow hashing in every test.
    return factories.UserFactory(password=None, **fields)


@pytest.fixture
def world() -> World:
    model = factories.catalog_model()
    a, b, s = _new_user(), _new_user(), _new_user(is_staff=True)
    # Staff change someone else's users row only with the admin's permission (accounts/sql/0012).
    s.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="change_user")
    )
    sessions, messages = {}, {}
    # Distinct tiers; A is on 'enterprise', which is not public.
    for user, slug in ((a, "enterprise"), (b, "team"), (s, "pro")):
        tier = SubscriptionTier.objects.get(slug=slug)
        sessions[user.pk], messages[user.pk] = _rows_for(user, model=model, tier=tier)
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('ai_usage_requests_id_seq')")
        new_usage_id = cursor.fetchone()[0]
    params = {
        "a": a.pk,
        "b": b.pk,
        "s": s.pk,
        "a_session": sessions[a.pk],
        "b_message": messages[b.pk],
        "model": model.pk,
        "provider": model.provider_id,
        "free_tier": SubscriptionTier.objects.get(slug="free").pk,
        "new_hash": _hex(),
        "new_usage_id": new_usage_id,
    }
    return World(a=a, b=b, s=s, sessions=sessions, messages=messages, params=params)


def _rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _attempt(sql: str, params=None) -> tuple[str, str]:
    """Run one write in its own savepoint, always rolled back: (OK or REFUSED or error, detail)."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                count = cursor.rowcount
            transaction.set_rollback(True)  # every cell starts from the same data
    except DatabaseError as error:
        state = getattr(error.__cause__, "sqlstate", None)
        message = str(error).strip().splitlines()[0]
        if state == "42501":
            return REFUSED, message
        return f"error {state}", message
    return (OK, f"{count} row(s)") if count > 0 else (REFUSED, "0 rows")


def _relation(actor: str, world: World, owner_id: int) -> set[str]:
    """How ``actor`` relates to the owner of a row: owner, other, anonymous and/or admin."""
    if actor == "anonymous":
        return {"anonymous"}
    me = world.actor(actor)
    relations = {"owner"} if me.pk == owner_id else {"other"}
    if me.is_staff:
        relations.add("admin")
    return relations


def _check_table(table: str, world: World) -> list[str]:
    select_who, *write_who = EXPECTED[table]
    column = _owner_column(table)
    everyone = sorted(row[0] for row in _rows(f"SELECT {column} FROM {table}"))
    targets = _rows(f"SELECT count(*) FROM {table} WHERE {column} = %s", [world.a.pk])[0][0]
    assert targets >= 1, f"setup: A has no row in {table}"
    wrong = []
    for actor in ACTORS:
        with transaction.atomic(), rls.user_context(world.actor(actor)):
            expected = [
                owner_id
                for owner_id in everyone
                if _relation(actor, world, owner_id) & set(select_who.split())
            ]
            seen = sorted(row[0] for row in _rows(f"SELECT {column} FROM {table}"))
            if seen != expected:
                wrong.append(f"{table} select as {actor}: saw owners {seen}, expected {expected}")
            for command, who, sql in zip(COMMANDS[1:], write_who, STATEMENTS[table], strict=True):
                want = OK if actor in who.split() else REFUSED
                got, detail = _attempt(sql, world.params)
                if got != want:
                    wrong.append(f"{table} {command} as {actor}: {got} ({detail}), expected {want}")
                elif got == OK and command != "insert" and detail != f"{targets} row(s)":
                    wrong.append(f"{table} {command} as {actor}: {detail}, expected {targets}")
    return wrong


def test_the_matrix_covers_every_protected_table():
    assert set(STATEMENTS) == set(EXPECTED)
    assert len(EXPECTED) == 19


@pytest.mark.parametrize("table", list(EXPECTED))
def test_rls_matrix(table, world):
    wrong = _check_table(table, world)
    assert not wrong, "wrong cells:\n" + "\n".join(wrong)


# --- ownership cannot be handed over ------------------------------------------------------------


@pytest.mark.parametrize("actor", ["owner", "admin"])
def test_no_row_can_be_handed_to_another_user(world, actor):
    wrong = []
    with transaction.atomic(), rls.user_context(world.actor(actor)):
        for table in EXPECTED:
            column = _owner_column(table)
            got, detail = _attempt(
                f"UPDATE {table} SET {column} = %(b)s WHERE {column} = %(a)s",
                world.params,
            )
            if got != REFUSED:
                wrong.append(f"{table}.{column} changed from A to B as {actor}: {got} ({detail})")
    assert not wrong, "\n".join(wrong)


def test_update_users_without_where_touches_only_the_callers_row(world):
    with transaction.atomic(), rls.user_context(world.a), connection.cursor() as cursor:
        cursor.execute("UPDATE users SET full_name = 'x'")
        assert cursor.rowcount == 1
    names = dict(
        User.objects.filter(pk__in=[world.a.pk, world.b.pk, world.s.pk]).values_list(
            "pk", "full_name"
        )
    )
    assert names == {world.a.pk: "x", world.b.pk: world.b.full_name, world.s.pk: world.s.full_name}
    assert "x" not in (world.b.full_name, world.s.full_name)


@pytest.mark.parametrize("actor", ["owner", "other"])
def test_writes_without_where_touch_only_the_callers_rows(world, actor):
    """UPDATE/DELETE policies alone decide which rows a WHERE-less statement reaches."""
    me = world.actor(actor)
    wrong = []
    for table in EXPECTED:
        column = _owner_column(table)
        own = _rows(f"SELECT count(*) FROM {table} WHERE {column} = %s", [me.pk])[0][0]
        with transaction.atomic(), rls.user_context(me):
            for statement in STATEMENTS[table][1:]:
                unfiltered = statement.split(" WHERE ")[0]
                got, detail = _attempt(unfiltered, world.params)
                if got == OK and detail != f"{own} row(s)":
                    wrong.append(f"{unfiltered!r} as {actor}: {detail}, owns {own}")
                elif got.startswith("error"):
                    wrong.append(f"{unfiltered!r} as {actor}: {got} ({detail})")
    assert not wrong, "\n".join(wrong)


PRIVILEGED_USER_COLUMNS = {
    "is_staff": "true",
    "is_superuser": "true",
    "email_verified_at": "now()",
    "email": "'someone-else@example.com'",
}


@pytest.mark.parametrize("column", list(PRIVILEGED_USER_COLUMNS))
def test_a_user_cannot_write_privileged_columns_of_their_own_row(world, column):
    value = PRIVILEGED_USER_COLUMNS[column]
    with transaction.atomic(), rls.user_context(world.a):
        got, detail = _attempt(f"UPDATE users SET {column} = {value} WHERE id = %s", [world.a.pk])
    assert got == REFUSED
    assert "permission denied" in detail


def test_a_row_cannot_point_at_another_users_data(world):
    """Secondary references must stay inside the caller's own data, like user_id does.

    A's feedback or tool call naming B's message, or A's alert claiming B acknowledged it,
    tie A's rows to another user's data (and a foreign-key error vs success tells A which of
    B's message ids exist).
    """
    attempts = {
        "agent_feedback.message_id -> B's message": (
            "INSERT INTO agent_feedback (session_id, message_id, user_id, rating, comment,"
            " category) VALUES (%(a_session)s, %(b_message)s, %(a)s, 1, '', '')"
        ),
        "agent_tool_calls.message_id -> B's message": (
            "INSERT INTO agent_tool_calls (session_id, message_id, user_id, tool_name,"
            " arguments, status, error) VALUES (%(a_session)s, %(b_message)s, %(a)s, 'search',"
            " '{}', 'pending', '')"
        ),
        "usage_alerts.acknowledged_by_id -> B": (
            "UPDATE usage_alerts SET acknowledged_at = clock_timestamp(),"
            " acknowledged_by_id = %(b)s WHERE user_id = %(a)s"
        ),
    }
    wrong = []
    with transaction.atomic(), rls.user_context(world.a):
        for what, sql in attempts.items():
            got, detail = _attempt(sql, world.params)
            if got != REFUSED:
                wrong.append(f"A may set {what}: {got} ({detail})")
    assert not wrong, "\n".join(wrong)


# --- the public catalog ---------------------------------------------------------------------


@dataclass
class Catalog:
    fresh: dict[str, str]  # table -> key of an active, public, unreferenced row
    retired: dict[str, str]  # table -> key of an inactive row
    key: dict[str, str]  # table -> its key column


@pytest.fixture
def catalog() -> Catalog:
    provider = factories.catalog_model().provider
    AIProvider.objects.create(slug="fresh-provider", name="Fresh")
    AIProvider.objects.create(slug="retired-provider", name="Retired", is_active=False)
    for name, active in (("fresh-model", True), ("retired-model", False)):
        AIModel.objects.create(
            provider=provider,
            name=name,
            display_name=name,
            context_window=8000,
            is_active=active,
        )
    tier_fields = {"monthly_token_limit": 1000, "requests_per_minute": 10}
    SubscriptionTier.objects.create(slug="fresh-tier", name="Fresh", **tier_fields)
    SubscriptionTier.objects.create(slug="retired-tier", name="Old", is_active=False, **tier_fields)
    return Catalog(
        fresh={
            "ai_providers": "fresh-provider",
            "ai_models": "fresh-model",
            "subscription_tiers": "fresh-tier",
        },
        retired={
            "ai_providers": "retired-provider",
            "ai_models": "retired-model",
            "subscription_tiers": "retired-tier",
        },
        key={"ai_providers": "slug", "ai_models": "name", "subscription_tiers": "slug"},
    )


CATALOG_VISIBLE = {
    "ai_providers": "is_active",
    "ai_models": "is_active",
    "subscription_tiers": "is_public AND is_active",
}

CATALOG_INSERTS = {
    "ai_providers": "INSERT INTO ai_providers (slug, name, base_url, is_local, is_active)"
    " VALUES ('new-provider', 'New', '', false, true)",
    "ai_models": "INSERT INTO ai_models (provider_id, name, display_name, context_window,"
    " input_price_per_million, output_price_per_million, cached_input_price_per_million,"
    " is_active) SELECT id, 'new-model', 'New', 1000, 0, 0, 0, true FROM ai_providers"
    " WHERE slug = 'openai'",
    "subscription_tiers": "INSERT INTO subscription_tiers (slug, name, description,"
    " monthly_price, yearly_price, currency, monthly_token_limit, monthly_cost_limit,"
    " requests_per_minute, features, is_public, is_active, sort_order)"
    " VALUES ('new-tier', 'New', '', 0, 0, 'USD', 1, 0, 1, '{}', true, true, 99)",
}


def _catalog_keys(table: str, key: str, where: str = "true") -> set[str]:
    return {row[0] for row in _rows(f"SELECT {key} FROM {table} WHERE {where}")}


@pytest.mark.parametrize("actor", ["anonymous", "owner", "admin"])
def test_catalog_visibility(world, catalog, actor):
    wrong = []
    for table, visible in CATALOG_VISIBLE.items():
        key = catalog.key[table]
        everything = _catalog_keys(table, key)
        public = _catalog_keys(table, key, visible)
        assert catalog.fresh[table] in public
        assert catalog.retired[table] not in public
        with transaction.atomic(), rls.user_context(world.actor(actor)):
            seen = _catalog_keys(table, key)
        expected = everything if actor == "admin" else public
        if table == "subscription_tiers" and actor == "owner":
            expected = public | {"enterprise"}  # the tier A is on, not public
        if seen != expected:
            wrong.append(f"{table} as {actor}: extra {seen - expected}, missing {expected - seen}")
    assert not wrong, "\n".join(wrong)


def test_a_user_on_a_private_tier_sees_it_and_nobody_else_does(world):
    sees = {}
    for actor in ACTORS:
        with transaction.atomic(), rls.user_context(world.actor(actor)):
            sees[actor] = bool(_rows("SELECT 1 FROM subscription_tiers WHERE slug = 'enterprise'"))
    assert sees == {"owner": True, "other": False, "anonymous": False, "admin": True}


@pytest.mark.parametrize("actor", ["anonymous", "owner", "admin"])
def test_catalog_writes_are_for_admins_only(world, catalog, actor):
    want = OK if actor == "admin" else REFUSED
    wrong = []
    with transaction.atomic(), rls.user_context(world.actor(actor)):
        for table in CATALOG_VISIBLE:
            key = catalog.key[table]
            fresh = catalog.fresh[table]
            statements = {
                "insert": (CATALOG_INSERTS[table], None),
                "update": (
                    f"UPDATE {table} SET created_at = created_at WHERE {key} = %s",
                    [fresh],
                ),
                "update all": (f"UPDATE {table} SET created_at = created_at", None),
                "delete": (f"DELETE FROM {table} WHERE {key} = %s", [fresh]),
            }
            for command, (sql, params) in statements.items():
                got, detail = _attempt(sql, params)
                if got != want:
                    wrong.append(f"{table} {command} as {actor}: {got} ({detail})")
    assert not wrong, "\n".join(wrong)


# --- partitions and the session statistics ------------------------------------------------------


def test_partitions_cannot_be_queried_directly(world):
    partitions = [
        row[0]
        for row in _rows(
            "SELECT inhrelid::regclass::text FROM pg_inherits"
            " WHERE inhparent = 'ai_usage_requests'::regclass"
        )
    ]
    now = datetime.now(UTC)
    assert "ai_usage_requests_default" in partitions
    assert f"ai_usage_requests_y{now:%Y}m{now:%m}" in partitions
    wrong = []
    for actor in ("owner", "admin"):
        with transaction.atomic(), rls.user_context(world.actor(actor)):
            for partition in partitions:
                got, detail = _attempt(f"SELECT * FROM {partition}")
                if got != REFUSED or "permission denied" not in detail:
                    wrong.append(f"SELECT from {partition} as {actor}: {got} ({detail})")
    assert not wrong, "\n".join(wrong)


def test_session_stats_are_read_only_through_the_function(world):
    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW agent_session_stats")
    everyone = sorted(row[0] for row in _rows("SELECT user_id FROM agent_session_stats"))
    assert {world.a.pk, world.b.pk, world.s.pk} <= set(everyone)
    expected = {
        "owner": [world.a.pk],
        "other": [world.b.pk],
        "anonymous": [],
        "admin": everyone,
    }
    for actor in ACTORS:
        with transaction.atomic(), rls.user_context(world.actor(actor)):
            got, detail = _attempt("SELECT * FROM agent_session_stats")
            assert got == REFUSED and "permission denied" in detail, (actor, got, detail)
            seen = sorted(row[0] for row in _rows("SELECT user_id FROM get_agent_session_stats()"))
            assert seen == expected[actor], actor
    with transaction.atomic(), rls.user_context(world.a):
        b_session = world.sessions[world.b.pk]
        assert _rows("SELECT * FROM get_agent_session_stats(%s)", [[b_session]]) == []


def test_the_audit_trail_cannot_be_diverted_into_a_temporary_table(world):
    """A SECURITY DEFINER function must write the real table, whatever the caller created.

    pg_temp comes first for table names unless the function's search_path lists it last, so
    a caller's ``pg_temp.audit_logs`` would catch write_audit_log's unqualified INSERT.
    """
    with transaction.atomic(), rls.user_context(world.a):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "CREATE TEMP TABLE audit_logs (LIKE public.audit_logs INCLUDING ALL)"
                )
        except DatabaseError:
            return  # the runtime role cannot create temporary tables: nothing to divert into
        _rows("SELECT write_audit_log('diversion_probe', %s)", [world.a.pk])
        diverted = _rows("SELECT count(*) FROM pg_temp.audit_logs")[0][0]
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE pg_temp.audit_logs")
    kept = _rows(
        "SELECT count(*) FROM public.audit_logs WHERE user_id = %s AND event_type = %s",
        [world.a.pk, "diversion_probe"],
    )[0][0]
    assert (kept, diverted) == (1, 0), "write_audit_log wrote into the caller's temporary table"
