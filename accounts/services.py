"""Writes for accounts. Each calls the SQL function of its flow (DESIGN.md)."""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, connection, transaction

from accounts.models import User, normalize_email
from witchcraft import db_errors

EMAIL_INVALID = "Enter a valid email address."
EMAIL_TAKEN = "An account with this email address already exists."


class RegistrationError(Exception):
    """Registration was refused; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def user_register(*, email: str, password: str, full_name: str = "") -> int:
    """Create an account through ``create_user_with_profile``; return the new user's id.

    The password is validated and hashed here; the database only ever sees the hash. Raises
    RegistrationError (``email`` or ``password``) and writes nothing when refused.
    """
    email = normalize_email(email)
    try:
        validate_email(email)
    except ValidationError:
        raise RegistrationError("email", EMAIL_INVALID) from None
    try:
        validate_password(password, User(email=email, full_name=full_name))
    except ValidationError as exc:
        raise RegistrationError("password", " ".join(exc.messages)) from None
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT create_user_with_profile(p_email => %s, p_password_hash => %s,"
                " p_full_name => %s)",
                [email, make_password(password), full_name.strip()],
            )
            user_id = cursor.fetchone()[0]
    except DatabaseError as exc:
        if db_errors.constraint_name(exc) == "users_email_key":
            raise RegistrationError("email", EMAIL_TAKEN) from None
        if db_errors.sqlstate(exc) == db_errors.INVALID_PARAMETER:
            raise RegistrationError("email", EMAIL_INVALID) from None
        raise
    return user_id
