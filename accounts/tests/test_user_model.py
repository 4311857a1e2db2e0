import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from accounts.services import EMAIL_TAKEN, RegistrationError

pytestmark = pytest.mark.django_db
User = get_user_model()


def _column_type(table: str, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s AND column_name = %s",
            [table, column],
        )
        row = cursor.fetchone()
    return row[0] if row else ""


def test_the_user_model_lives_in_the_users_table_with_a_bigint_id():
    assert User._meta.db_table == "users"
    assert _column_type("users", "id") == "bigint"
    assert _column_type("users", "email") == "character varying"


def test_email_is_the_login_and_is_normalised():
    user = User.objects.create_user(email="  Ann.Smith@Example.COM ", password="a long passphrase")
    assert user.email == "ann.smith@example.com"
    assert User.objects.get_by_natural_key("ANN.SMITH@example.com") == user
    assert user.check_password("a long passphrase")


def test_emails_are_unique_regardless_of_case():
    User.objects.create_user(email="bob@example.com", password="x" * 12)
    with pytest.raises(RegistrationError, match=EMAIL_TAKEN), transaction.atomic():
        User.objects.create_user(email="BOB@Example.com", password="y" * 12)


def test_the_database_refuses_a_mixed_case_email_written_around_django():
    with pytest.raises(IntegrityError, match="users_email_normalized"), connection.cursor() as c:
        c.execute(
            "INSERT INTO users (email, password, full_name, is_active, is_staff, is_superuser,"
            " date_joined) VALUES ('Carol@Example.com', '', '', true, false, false, now())"
        )


def test_superuser_has_staff_rights():
    admin = User.objects.create_superuser(email="root@example.com", password="z" * 12)
    assert admin.is_staff and admin.is_superuser
