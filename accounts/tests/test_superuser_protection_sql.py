"""The database refuses what the admin's forms refuse (accounts/sql/0012_superuser_protection.sql),
tested without the admin: raw SQL as the runtime role ``witchcraft_app`` under each identity.

Only a superuser changes a superuser's account or anyone's staff flags; staff need the
accounts.change_user permission to change someone else's row; whoever may change a user's
password may end their reset links, nobody else."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts import recovery
from accounts.models import EmailVerificationToken, PasswordResetToken, User
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db
FORGED_HASH = "argon2$argon2id$v=19$m=102400,t=2,p=8$forged$forged"


def _user(**fields) -> User:
    return factories.UserFactory(password=None, **fields)


def _change_user_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="accounts", codename="change_user")


@pytest.fixture
def root() -> User:
    return _user(is_staff=True, is_superuser=True)


@pytest.fixture
def staff() -> User:
    """Staff holding accounts.change_user: what the admin needs to edit users."""
    member = _user(is_staff=True)
    member.user_permissions.add(_change_user_permission())
    return member


@pytest.fixture
def member() -> User:
    return _user()


def _run(identity, sql: str, params=None) -> str:
    """Run ``sql`` as the runtime role with ``identity`` (a user, or "service"), rolled back;
    return "refused" (SQLSTATE 42501), "N row(s)", or the result of a SELECT."""
    context = rls.service_context() if identity == "service" else rls.user_context(identity)
    try:
        with transaction.atomic(), context, connection.cursor() as cursor:
            cursor.execute(sql, params)
            outcome = (
                str(cursor.fetchone()[0])
                if sql.lstrip().upper().startswith("SELECT")
                else f"{cursor.rowcount} row(s)"
            )
            transaction.set_rollback(True)
    except DatabaseError as error:
        state = getattr(error.__cause__, "sqlstate", None)
        assert state == "42501", f"{state}: {error}"
        return "refused"
    return outcome


def _password_of(user: User) -> str:
    return User.objects.values_list("password", flat=True).get(pk=user.pk)


# --- the helper ---------------------------------------------------------------------------------


def test_is_superuser_believes_the_users_row_not_the_sessions_word(root, staff, member):
    assert _run(root, "SELECT auth.is_superuser()") == "True"
    assert _run("service", "SELECT auth.is_superuser()") == "True"
    assert _run(staff, "SELECT auth.is_superuser()") == "False"
    assert _run(member, "SELECT auth.is_superuser()") == "False"
    assert _run(AnonymousUser(), "SELECT auth.is_superuser()") == "False"
    # A staff identity that claims more than its row says.
    forged = rls.Identity(user_id=staff.pk, is_admin=True)
    with transaction.atomic(), rls.identity_context(forged), connection.cursor() as cursor:
        cursor.execute("SELECT auth.is_superuser()")
        assert cursor.fetchone()[0] is False
    # A superuser's id with somebody else at the keyboard (an impersonation) is not one.
    borrowed = rls.Identity(user_id=root.pk, is_admin=True, actor_id=staff.pk)
    with transaction.atomic(), rls.identity_context(borrowed), connection.cursor() as cursor:
        cursor.execute("SELECT auth.is_superuser()")
        assert cursor.fetchone()[0] is False
    # An inactive superuser is none.
    User.objects.filter(pk=root.pk).update(is_active=False)
    assert _run(root, "SELECT auth.is_superuser()") == "False"


# --- a superuser's account ----------------------------------------------------------------------


def test_staff_cannot_overwrite_a_superusers_password_hash(root, staff):
    before = _password_of(root)
    got = _run(staff, "UPDATE users SET password = %s WHERE id = %s", [FORGED_HASH, root.pk])
    assert got == "refused"
    assert _password_of(root) == before


def test_staff_cannot_touch_any_column_of_a_superusers_row(root, staff):
    for statement in (
        "UPDATE users SET full_name = 'Taken over' WHERE id = %s",
        "UPDATE users SET last_login = now() WHERE id = %s",
    ):
        assert _run(staff, statement, [root.pk]) == "refused", statement


def test_a_superuser_may_change_another_superusers_password(root):
    other_root = _user(is_staff=True, is_superuser=True)
    got = _run(root, "UPDATE users SET password = %s WHERE id = %s", [FORGED_HASH, other_root.pk])
    assert got == "1 row(s)"


def test_a_superuser_may_change_their_own_password(root):
    got = _run(root, "UPDATE users SET password = %s WHERE id = %s", [FORGED_HASH, root.pk])
    assert got == "1 row(s)"


def test_the_service_context_may_change_a_superusers_password(root):
    # The reset link's path: it runs before anyone is signed in.
    got = _run("service", "UPDATE users SET password = %s WHERE id = %s", [FORGED_HASH, root.pk])
    assert got == "1 row(s)"


def test_a_superuser_may_still_confirm_their_address_from_a_link_while_signed_out(root):
    """confirm_email() writes email_verified_at for whoever holds the link."""
    digest = recovery.new_token()[1]
    EmailVerificationToken.objects.create(
        user=root,
        email=root.email,
        token_hash=digest,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    assert _run(AnonymousUser(), "SELECT confirm_email(%s)", [digest]) == str(root.pk)


# --- staff flags, whatever the path -------------------------------------------------------------


def test_staff_cannot_set_is_superuser_on_anyone(staff, member):
    for target in (staff, member):
        got = _run(staff, "UPDATE users SET is_superuser = true WHERE id = %s", [target.pk])
        assert got == "refused"
        got = _run(
            staff,
            "SELECT set_user_staff(p_user_id => %s, p_is_staff => true, p_is_superuser => true)",
            [target.pk],
        )
        assert got == "refused"
    assert not User.objects.filter(pk__in=[staff.pk, member.pk], is_superuser=True).exists()


@pytest.fixture
def writer_function():
    """A SECURITY DEFINER function that writes users as its owner, as a future SQL function
    might: the column grants do not stop it, so only the trigger stands in the way."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION public.test_users_write(p_id bigint, p_super boolean)"
            " RETURNS integer LANGUAGE sql SECURITY DEFINER"
            " SET search_path = pg_catalog, public, pg_temp AS $$"
            " UPDATE public.users SET is_superuser = p_super, is_staff = p_super,"
            " is_active = true WHERE id = p_id RETURNING 1 $$;"
            " GRANT EXECUTE ON FUNCTION public.test_users_write(bigint, boolean)"
            " TO witchcraft_app"
        )
    return "SELECT public.test_users_write(%s, %s)"


def test_the_trigger_refuses_flags_on_every_path_but_a_superusers(
    writer_function, root, staff, member
):
    assert _run(staff, writer_function, [member.pk, True]) == "refused"
    assert _run(staff, writer_function, [staff.pk, True]) == "refused"
    assert _run(member, writer_function, [member.pk, True]) == "refused"
    assert _run(staff, writer_function, [root.pk, False]) == "refused"  # demote a superuser
    assert _run(root, writer_function, [member.pk, True]) == "1"


def test_the_trigger_refuses_a_staff_account_inserted_by_anyone_but_a_superuser(staff, root):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION public.test_users_insert(p_email text) RETURNS bigint"
            " LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$"
            " INSERT INTO public.users (email, password, full_name, is_active, is_staff,"
            " is_superuser, date_joined) VALUES (p_email, '!', '', true, true, true, now())"
            " RETURNING id $$;"
            " GRANT EXECUTE ON FUNCTION public.test_users_insert(text) TO witchcraft_app"
        )
    insert = "SELECT public.test_users_insert(%s)"
    assert _run(staff, insert, ["made-by-staff@example.com"]) == "refused"
    assert _run(root, insert, ["made-by-root@example.com"]).isdigit()


# --- someone else's row: the change_user permission -------------------------------------------


def test_staff_with_change_user_may_change_a_plain_users_password(staff, member):
    got = _run(staff, "UPDATE users SET password = %s WHERE id = %s", [FORGED_HASH, member.pk])
    assert got == "1 row(s)"


def test_staff_without_change_user_cannot_change_anyone_elses_row(member):
    bare = _user(is_staff=True)
    for statement in (
        "UPDATE users SET password = 'x' WHERE id = %s",
        "UPDATE users SET full_name = 'x' WHERE id = %s",
    ):
        assert _run(bare, statement, [member.pk]) == "refused", statement


def test_change_user_through_a_group_counts(member):
    from django.contrib.auth.models import Group

    editors = Group.objects.create(name="editors")
    editors.permissions.add(_change_user_permission())
    grouped = _user(is_staff=True)
    grouped.groups.add(editors)
    got = _run(grouped, "UPDATE users SET full_name = 'x' WHERE id = %s", [member.pk])
    assert got == "1 row(s)"


def test_a_permission_left_on_an_account_that_is_no_longer_staff_counts_for_nothing(member):
    former = _user(is_staff=False)
    former.user_permissions.add(_change_user_permission())
    assert _run(former, "UPDATE users SET full_name = 'x' WHERE id = %s", [member.pk]) == "0 row(s)"
    assert _run(former, "SELECT auth.has_perm('accounts', 'change_user')") == "False"


def test_a_user_still_changes_their_own_row(member):
    got = _run(member, "UPDATE users SET full_name = 'me' WHERE id = %s", [member.pk])
    assert got == "1 row(s)"


# --- reset links ---------------------------------------------------------------------------------


def _reset_link_for(user: User) -> PasswordResetToken:
    return PasswordResetToken.objects.create(
        user=user,
        token_hash=recovery.new_token()[1],
        expires_at=timezone.now() + timedelta(hours=1),
    )


def test_reset_links_end_for_whoever_may_change_that_password(root, staff, member):
    for user in (root, member):
        _reset_link_for(user)
    end = "SELECT end_password_reset_links(%s)"
    assert _run(member, end, [member.pk]) == "1"
    assert _run(staff, end, [member.pk]) == "1"
    assert _run(root, end, [member.pk]) == "1"
    assert _run(staff, end, [root.pk]) == "refused"
    assert _run(_user(), end, [member.pk]) == "refused"
    assert _run(AnonymousUser(), end, [member.pk]) == "refused"
    assert PasswordResetToken.objects.filter(used_at__isnull=True).count() == 2
