"""Access tokens (accounts.tokens): issue, authenticate, expire, revoke; the raw token is stored
nowhere. Services run as the runtime role in a real row-level-security context."""

import hashlib
import logging
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import audit, tokens
from accounts.models import AccessToken, AuditLog
from witchcraft.platform import db_errors, rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db
IP = "203.0.113.7"


def _verified(**fields):
    return factories.UserFactory(email_verified_at=timezone.now(), **fields)


def _issue(user, name="laptop", **kwargs) -> tokens.IssuedToken:
    with transaction.atomic(), rls.user_context(user):
        return tokens.token_issue(user_id=user.pk, name=name, **kwargs)


def _revoke(actor, *, user_id, token_id) -> bool:
    with transaction.atomic(), rls.user_context(actor):
        return tokens.token_revoke(user_id=user_id, token_id=token_id)


def _authenticate(raw, ip=IP):
    """As the API will: inside a request's anonymous context."""
    with transaction.atomic(), rls.user_context(AnonymousUser()):
        return tokens.token_authenticate(raw_token=raw, ip=ip, user_agent="curl/8")


def _age(token: AccessToken, age: str, ttl: str = "30 days") -> None:
    """Move a token back in time (as the table owner): created ``age`` ago, living ``ttl``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE access_tokens SET created_at = statement_timestamp() - %s::interval,"
            " expires_at = statement_timestamp() - %s::interval + %s::interval WHERE id = %s",
            [age, age, ttl, token.pk],
        )


def _columns_containing(needle: str) -> list[str]:
    """Every column of every table in the database whose text contains ``needle``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_schema, c.table_name, c.column_name"
            "  FROM information_schema.columns c"
            "  JOIN information_schema.tables t"
            "    ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
            " WHERE t.table_type = 'BASE TABLE'"
            "   AND c.table_schema NOT IN ('pg_catalog', 'information_schema')"
            "   AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',"
            "                       'ARRAY', 'USER-DEFINED', 'inet')"
        )
        columns = cursor.fetchall()
        assert len(columns) > 50  # the scan really covers the schema
        found = []
        for schema, table, column in columns:
            quote = connection.ops.quote_name
            cursor.execute(
                f"SELECT count(*) FROM {quote(schema)}.{quote(table)}"
                f" WHERE strpos({quote(column)}::text, %s) > 0",
                [needle],
            )
            if cursor.fetchone()[0]:
                found.append(f"{schema}.{table}.{column}")
        return found


# --- issuing -----------------------------------------------------------------------------------


def test_a_token_is_issued_hashed_with_a_visible_prefix_and_audited():
    user = _verified()
    issued = _issue(user, name="CI runner", scopes=["agents", "usage.read"])
    raw, token = issued.raw, issued.token
    assert raw.startswith("wc_") and len(raw) >= 3 + 43  # 256 bits of URL-safe base64
    assert raw not in repr(issued)
    stored = AccessToken.objects.get(pk=token.pk)
    assert stored.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert stored.prefix == raw[:10]
    assert stored.name == "CI runner"
    assert stored.scopes == ["usage.read", "agents"]  # in the vocabulary's order
    assert stored.expires_at - stored.created_at == timedelta(days=30)
    assert stored.last_used_at is None and stored.revoked_at is None
    [row] = AuditLog.objects.filter(user=user, event_type=audit.TOKEN_CREATED)
    assert row.actor_id == user.pk
    assert (row.target_type, row.target_id) == ("access_token", str(token.pk))
    assert row.details["name"] == "CI runner" and row.details["prefix"] == raw[:10]
    assert raw not in str(row.details) and raw[10:] not in str(row.details)


def test_the_lifetime_comes_from_settings_or_the_caller(settings):
    user = _verified()
    settings.ACCESS_TOKEN_TTL_DAYS = 7
    default = _issue(user).token
    assert default.expires_at - default.created_at == timedelta(days=7)
    short = _issue(user, ttl_days=1).token
    assert short.expires_at - short.created_at == timedelta(days=1)
    for ttl in (0, -1, 31, 367, True, "30"):
        with pytest.raises(tokens.TokenError) as refused:
            _issue(user, ttl_days=ttl)
        assert refused.value.message == tokens.TTL_INVALID.format(max_days=30)


def test_an_unverified_account_cannot_create_tokens():
    user = factories.UserFactory(email_verified_at=None)
    with pytest.raises(tokens.TokenError) as refused:
        _issue(user)
    assert refused.value.message == tokens.EMAIL_UNVERIFIED
    assert refused.value.code == db_errors.FORBIDDEN
    assert not AccessToken.objects.filter(user=user).exists()
    assert not AuditLog.objects.filter(user=user, event_type=audit.TOKEN_CREATED).exists()


@pytest.mark.parametrize("fields", [{"is_active": False}, {"deleted_at": timezone.now()}])
def test_an_inactive_or_deleted_account_cannot_create_tokens(fields):
    user = _verified(**fields)
    with pytest.raises(tokens.TokenError) as refused:
        _issue(user)
    assert refused.value.message == tokens.ACCOUNT_INACTIVE


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", tokens.NAME_REQUIRED),
        ("   ", tokens.NAME_REQUIRED),
        ("x" * 101, tokens.NAME_TOO_LONG),
        ("evil\r\nlogin_succeeded", tokens.NAME_INVALID),
        ("nul\x00", tokens.NAME_INVALID),
    ],
)
def test_a_bad_name_is_refused_and_nothing_written(name, message):
    user = _verified()
    with pytest.raises(tokens.TokenError) as refused:
        _issue(user, name=name)
    assert (refused.value.message, refused.value.field) == (message, "name")
    assert not AccessToken.objects.filter(user=user).exists()
    assert not AuditLog.objects.filter(user=user, event_type=audit.TOKEN_CREATED).exists()


@pytest.mark.parametrize(
    "scopes", [["Usage"], ["a" * 33], [""], ["usage:read"], ["agents", "admin"], "account", [7]]
)
def test_bad_scopes_are_refused(scopes):
    user = _verified()
    with pytest.raises(tokens.TokenError) as refused:
        _issue(user, scopes=scopes)
    assert (refused.value.code, refused.value.field) == (db_errors.INVALID, "scopes")
    assert not AccessToken.objects.filter(user=user).exists()


def test_at_most_fifty_active_tokens():
    user = _verified()
    first = _issue(user, name="token 0").token
    for i in range(1, tokens.MAX_ACTIVE_TOKENS):
        _issue(user, name=f"token {i}")
    with pytest.raises(tokens.TokenError) as refused:
        _issue(user, name="one too many")
    assert refused.value.message == tokens.TOO_MANY_TOKENS
    assert AccessToken.objects.filter(user=user).count() == tokens.MAX_ACTIVE_TOKENS
    # Revoked and expired tokens do not count.
    assert _revoke(user, user_id=user.pk, token_id=first.pk)
    _issue(user, name="instead of token 0")
    _age(AccessToken.objects.filter(user=user, revoked_at__isnull=True).first(), "31 days")
    _issue(user, name="instead of an expired one")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_requests_cannot_pass_the_limit_together():
    user = _verified()
    with connection.cursor() as cursor:  # 48 active tokens, made directly as the table owner
        cursor.execute(
            "INSERT INTO access_tokens (user_id, name, token_hash, prefix, scopes, expires_at)"
            " SELECT %s, 'old ' || i, md5(i::text) || md5(i::text), 'wc_old', '{}',"
            "        now() + interval '1 day'"
            "   FROM generate_series(1, %s) i",
            [user.pk, tokens.MAX_ACTIVE_TOKENS - 2],
        )
    count = 6
    barrier = threading.Barrier(count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def issue(i: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            _issue(user, name=f"parallel {i}")
            outcome = "issued"
        except tokens.TokenError as refused:
            outcome = refused.message
        except Exception as exc:  # asserted on below
            outcome = repr(exc)
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=issue, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == sorted(["issued"] * 2 + [tokens.TOO_MANY_TOKENS] * (count - 2))
    assert AccessToken.objects.filter(user=user).count() == tokens.MAX_ACTIVE_TOKENS


# --- authenticating ----------------------------------------------------------------------------


def test_a_good_token_authenticates_and_records_its_use():
    user = _verified()
    issued = _issue(user)
    result = _authenticate(issued.raw)
    assert result is not None
    who, token = result
    assert (who.pk, token.pk) == (user.pk, issued.token.pk)
    assert token.last_used_at is not None
    assert token.last_used_ip == IP
    # Works outside any transaction or context too (a command, a test).
    assert tokens.token_authenticate(raw_token=issued.raw, ip="")[0].pk == user.pk


def test_the_last_use_is_written_at_most_once_a_minute():
    issued = _issue(_verified())
    _authenticate(issued.raw, ip="198.51.100.1")
    token = AccessToken.objects.get(pk=issued.token.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE access_tokens SET last_used_at = statement_timestamp() - interval '30 seconds'"
            " WHERE id = %s RETURNING last_used_at",
            [token.pk],
        )
        recent = cursor.fetchone()[0]
    _authenticate(issued.raw, ip="198.51.100.2")
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_ip) == (recent, "198.51.100.1")
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=recent - timedelta(minutes=1))
    _authenticate(issued.raw, ip="198.51.100.2")
    token.refresh_from_db()
    assert token.last_used_at > recent and token.last_used_ip == "198.51.100.2"


@pytest.mark.parametrize(
    ("age", "accepted"),
    [("30 days -1 second", True), ("30 days 1 second", False), ("31 days", False)],
)
def test_expiry_after_thirty_days(age, accepted):
    issued = _issue(_verified())
    _age(issued.token, age)
    assert (_authenticate(issued.raw) is not None) is accepted


def test_an_expired_token_is_audited_once():
    user = _verified()
    issued = _issue(user)
    _age(issued.token, "30 days 1 second")
    assert _authenticate(issued.raw) is None
    assert _authenticate(issued.raw) is None
    [row] = AuditLog.objects.filter(user=user, event_type=audit.TOKEN_EXPIRED)
    assert (row.target_type, row.target_id) == ("access_token", str(issued.token.pk))
    assert row.ip == IP and row.user_agent == "curl/8"
    assert row.details["prefix"] == issued.token.prefix
    assert issued.raw not in str(row.details)
    assert AccessToken.objects.get(pk=issued.token.pk).last_used_at is None


def test_a_revoked_token_is_refused():
    user = _verified()
    issued = _issue(user)
    assert _revoke(user, user_id=user.pk, token_id=issued.token.pk) is True
    assert _revoke(user, user_id=user.pk, token_id=issued.token.pk) is False  # already
    assert _authenticate(issued.raw) is None
    [row] = AuditLog.objects.filter(user=user, event_type=audit.TOKEN_REVOKED)
    assert row.target_id == str(issued.token.pk) and row.details["name"] == "laptop"


@pytest.mark.parametrize("fields", [{"is_active": False}, {"deleted_at": timezone.now()}])
def test_a_deactivated_or_deleted_users_token_is_refused(fields):
    user = _verified()
    issued = _issue(user)
    type(user).objects.filter(pk=user.pk).update(**fields)
    assert _authenticate(issued.raw) is None
    assert AccessToken.objects.get(pk=issued.token.pk).last_used_at is None


@pytest.mark.parametrize(
    "raw", ["", "wc_", "wc_unknown", "Bearer wc_x", "x" * 10_000, "wc_" + "a" * 500, None, 42]
)
def test_unknown_or_malformed_tokens_are_refused(raw):
    _issue(_verified())
    assert _authenticate(raw) is None


def test_a_malformed_ip_does_not_break_authentication():
    issued = _issue(_verified())
    _, token = _authenticate(issued.raw, ip="not an address")
    assert token.last_used_ip is None


def test_authentication_leaves_the_callers_context_as_it_was():
    issued = _issue(_verified())
    with transaction.atomic(), rls.user_context(AnonymousUser()), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, auth.user_id(), auth.is_service()")
        before = cursor.fetchone()
        assert tokens.token_authenticate(raw_token=issued.raw, ip=IP) is not None
        cursor.execute("SELECT current_user, auth.user_id(), auth.is_service()")
        assert cursor.fetchone() == before == ("witchcraft_app", None, False)


# --- revoking and seeing -----------------------------------------------------------------------


def test_another_user_can_neither_see_nor_revoke_my_token():
    me, other = _verified(), _verified()
    issued = _issue(me)
    assert _revoke(other, user_id=me.pk, token_id=issued.token.pk) is False
    assert _revoke(other, user_id=other.pk, token_id=issued.token.pk) is False
    with transaction.atomic(), rls.user_context(other):
        assert not AccessToken.objects.filter(pk=issued.token.pk).exists()
    assert AccessToken.objects.get(pk=issued.token.pk).revoked_at is None
    assert _authenticate(issued.raw) is not None
    assert not AuditLog.objects.filter(event_type=audit.TOKEN_REVOKED).exists()


def test_an_admin_may_revoke_anyones_token():
    me, staff = _verified(), _verified(is_staff=True)
    issued = _issue(me)
    assert _revoke(staff, user_id=me.pk, token_id=issued.token.pk) is True
    [row] = AuditLog.objects.filter(user=me, event_type=audit.TOKEN_REVOKED)
    assert row.actor_id == staff.pk


def test_revoking_an_out_of_range_id_is_a_plain_no():
    user = _verified()
    assert _revoke(user, user_id=user.pk, token_id=2**70) is False


def test_revoke_all_revokes_only_that_users_active_tokens():
    me, other = _verified(), _verified()
    mine = [_issue(me, name=f"t{i}").token for i in range(3)]
    theirs = _issue(other).token
    _revoke(me, user_id=me.pk, token_id=mine[0].pk)
    with transaction.atomic(), rls.service_context():
        assert tokens.tokens_revoke_all(user_id=me.pk) == 2
    assert not AccessToken.objects.filter(user=me, revoked_at__isnull=True).exists()
    assert AccessToken.objects.get(pk=theirs.pk).revoked_at is None


# --- the raw token is nowhere -----------------------------------------------------------------


def test_the_raw_token_is_in_no_table_no_query_and_no_log(caplog):
    user = _verified()
    caplog.set_level(logging.DEBUG)
    with CaptureQueriesContext(connection) as queries:
        issued = _issue(user, name="scan me")
        _authenticate(issued.raw)
        _age(issued.token, "31 days")
        _authenticate(issued.raw)  # expired: audited
        _revoke(user, user_id=user.pk, token_id=issued.token.pk)
    raw, secret_part = issued.raw, issued.raw[tokens.PREFIX_LENGTH :]
    # The scan finds what is stored: the hash, and the visible prefix (table and audit rows).
    assert _columns_containing(issued.token.token_hash) == ["public.access_tokens.token_hash"]
    assert {"public.access_tokens.prefix", "public.audit_logs.details"} <= set(
        _columns_containing(issued.token.prefix)
    )
    assert _columns_containing(raw) == []
    assert _columns_containing(secret_part) == []
    sent = " ".join(f"{q['sql']}" for q in queries.captured_queries)
    assert secret_part not in sent
    assert secret_part not in caplog.text


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_outside_any_transaction_one_statement_gives_the_token_and_its_user():
    """The API's path (no transaction open yet): the check, then both rows in one plain
    statement, the same objects as the ORM loads; refused tokens give None."""
    user = _verified(full_name="Ada Lovelace")
    issued = _issue(user)
    assert not connection.in_atomic_block
    with CaptureQueriesContext(connection) as queries:
        who, token = tokens.token_authenticate(raw_token=issued.raw, ip=IP)
    assert len(queries) == 2
    stored = AccessToken.objects.select_related("user").get(pk=issued.token.pk)
    assert {f.attname: getattr(token, f.attname) for f in AccessToken._meta.concrete_fields} == {
        f.attname: getattr(stored, f.attname) for f in AccessToken._meta.concrete_fields
    }
    assert who == stored.user and who.full_name == "Ada Lovelace" and who.is_authenticated
    assert token.user is who and token.last_used_ip == IP
    assert not token._state.adding and token._state.db == "default"

    assert tokens.token_authenticate(raw_token=issued.raw[:-2] + "xx", ip=IP) is None
    with transaction.atomic(), rls.user_context(user):
        tokens.token_revoke(user_id=user.pk, token_id=issued.token.pk)
    assert tokens.token_authenticate(raw_token=issued.raw, ip=IP) is None
