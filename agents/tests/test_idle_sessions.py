"""agent_sessions_end_idle(): the agents step of daily_maintenance (the job itself is tested in
accounts/tests/test_daily_maintenance.py). Rows are made old by the test connection outside any
context, which is the owner."""

import pytest
from django.db import connection

from agents.models import AgentSession
from witchcraft.testing.factories import AgentSessionFactory
from witchcraft.testing.maintenance import (
    CONTEXTS,
    SERVICE_ONLY,
    run_as_owner,
    runtime_role_outcomes,
)

pytestmark = pytest.mark.django_db

STEP = "public.agent_sessions_end_idle()"


def _last_active(session: AgentSession, ago: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE agent_sessions SET started_at = now() - interval '30 hours',"
            " last_activity_at = now() - %s::interval WHERE id = %s",
            [ago, session.pk],
        )


def test_ends_the_sessions_idle_for_24_hours_and_a_second_run_ends_none(user):
    idle = AgentSessionFactory(user=user)
    _last_active(idle, "25 hours")
    recent = AgentSessionFactory(user=user)
    _last_active(recent, "23 hours")
    idle_since = AgentSession.objects.get(pk=idle.pk).last_activity_at

    assert run_as_owner(STEP) == 1
    ended = AgentSession.objects.get(pk=idle.pk)
    assert (ended.is_active, ended.ended_at) == (False, idle_since)
    assert AgentSession.objects.get(pk=recent.pk).is_active is True

    assert run_as_owner(STEP) == 0
    assert AgentSession.objects.get(pk=idle.pk).ended_at == idle_since


def test_is_the_service_contexts_only():
    """Not granted to the runtime role in any context; granted, its own check refuses."""
    assert runtime_role_outcomes(STEP) == dict.fromkeys(CONTEXTS, "not granted")
    assert runtime_role_outcomes(STEP, granted=True) == SERVICE_ONLY
