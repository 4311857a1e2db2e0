"""refresh_agent_session_stats() and the refresh_session_stats command."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction

from agents.models import AgentSessionStats
from witchcraft.platform import rls
from witchcraft.platform.maintenance_command import DRY_RUN_NOTICE
from witchcraft.testing.factories import AgentMessageFactory, AgentSessionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _refresh() -> int:
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT public.refresh_agent_session_stats()")
        return cursor.fetchone()[0]


def _command(*args: str) -> str:
    out = StringIO()
    call_command("refresh_session_stats", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_refresh_recomputes_the_view_and_returns_its_row_count(user):
    session = AgentSessionFactory(user=user)
    AgentMessageFactory(session=session, role="user", position=1)
    AgentSessionFactory(user=user)
    assert not AgentSessionStats.objects.filter(user=user).exists()

    assert _refresh() == 2
    assert AgentSessionStats.objects.get(session=session).user_messages == 1

    AgentMessageFactory(session=session, role="assistant", position=2)
    assert _refresh() == 2
    assert AgentSessionStats.objects.get(session=session).assistant_messages == 1


def test_an_unpopulated_view_is_filled_the_plain_way(user):
    """CONCURRENTLY refuses a view created or emptied WITH NO DATA."""
    AgentSessionFactory(user=user)
    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW agent_session_stats WITH NO DATA")
    assert _refresh() == 1
    assert AgentSessionStats.objects.count() == 1


@pytest.mark.parametrize("who", ["user", "admin", "anonymous"])
def test_only_the_service_context_may_refresh(who):
    caller = {"user": UserFactory(), "admin": UserFactory(is_staff=True), "anonymous": None}[who]
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.user_context(caller),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT public.refresh_agent_session_stats()")
    assert caught.value.__cause__.sqlstate == "42501"


def test_the_app_role_cannot_refresh_the_view_itself():
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.service_context(),
        connection.cursor() as cursor,
    ):
        cursor.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY agent_session_stats")
    assert caught.value.__cause__.sqlstate == "42501"


def test_command_prints_the_row_count(user):
    AgentSessionFactory(user=user)
    assert _command() == "session_stats_rows: 1\n"
    assert json.loads(_command("--json")) == {"session_stats_rows": 1}


def test_command_dry_run_changes_nothing(user):
    AgentSessionFactory(user=user)
    assert _command("--dry-run").splitlines() == [DRY_RUN_NOTICE, "session_stats_rows: 1"]
    assert not AgentSessionStats.objects.filter(user=user).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_command_commits_the_refresh_for_other_connections(user):
    """Outside a test transaction: the command's own transaction commits the refresh."""
    session = AgentSessionFactory(user=user)
    try:
        assert _command() == "session_stats_rows: 1\n"
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT session_id FROM agent_session_stats")
                assert cursor.fetchall() == [(session.pk,)]
        finally:
            other.close()
    finally:
        # The flush after this test empties the tables, not the view: leave it empty too.
        session.delete()
        _command()
