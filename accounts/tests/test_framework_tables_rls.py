"""Django's users_groups and users_user_permissions under row-level security, and no rights on
the unused django_session (accounts/sql/0014_framework_tables.sql), as the runtime role."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import ProgrammingError, connection, transaction

from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    group = Group.objects.create(name="support")
    permission = Permission.objects.get(codename="view_user")
    alice, bob = factories.UserFactory(), factories.UserFactory()
    staff = factories.UserFactory(is_staff=True)
    for user in (alice, bob):
        user.groups.add(group)
        user.user_permissions.add(permission)
    return alice, bob, staff


def _seen(user, table: str) -> set[int]:
    with transaction.atomic(), rls.user_context(user), connection.cursor() as cursor:
        cursor.execute(f"SELECT user_id FROM {table}")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("table", ["users_groups", "users_user_permissions"])
def test_a_user_sees_only_their_own_and_staff_see_all(people, table):
    alice, bob, staff = people
    assert _seen(alice, table) == {alice.pk}
    assert _seen(bob, table) == {bob.pk}
    assert _seen(staff, table) >= {alice.pk, bob.pk}


@pytest.mark.parametrize("table", ["users_groups", "users_user_permissions"])
def test_nobody_writes_them_as_the_runtime_role(people, table):
    staff = people[2]
    column = "group_id" if table == "users_groups" else "permission_id"
    with (
        pytest.raises(ProgrammingError, match="permission denied"),
        transaction.atomic(),
        rls.user_context(staff),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"INSERT INTO {table} (user_id, {column}) SELECT %s, {column} FROM {table} LIMIT 1",
            [staff.pk],
        )


def test_the_runtime_role_has_no_right_on_django_session():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT privilege FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE'])"
            " AS p(privilege) WHERE has_table_privilege(%s, 'public.django_session', privilege)",
            [rls.APP_ROLE],
        )
        assert cursor.fetchall() == []
