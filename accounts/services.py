"""Writes for accounts. Each calls the SQL function of its flow (DESIGN.md).

There is one way to make a user: :func:`user_create`, which calls ``create_user_with_profile``
(the user, their profile, the quota and free subscription of the current month, and the
``user_created`` audit row, in one transaction). The sign-up page and the API
(:func:`user_register`, through accounts.registration), the admin's "Add user", ``manage.py
createsuperuser`` and the UserManager (:mod:`accounts.models`) all go through it;
``seed_demo`` calls the SQL function itself, set-wise (:mod:`witchcraft.demo.registration`).
"""

from __future__ import annotations

from contextlib import nullcontext

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, connection, transaction

from accounts import staff
from accounts.emails import normalize_email
from witchcraft.platform import db_errors, rls

EMAIL_INVALID = "Enter a valid email address."
EMAIL_TAKEN = "An account with this email address already exists."


class RegistrationError(db_errors.Refused):
    """Registration was refused: ``code`` is ``invalid`` (a bad address or password),
    ``conflict`` (the address is taken) or the staff flags' refusal; ``field`` names the input
    at fault."""


def _valid_email(email: str) -> str:
    """The address normalised; RegistrationError (``email``) when it is not one."""
    email = normalize_email(email)
    try:
        validate_email(email)
    except ValidationError:
        raise RegistrationError(db_errors.INVALID, EMAIL_INVALID, field="email") from None
    return email


def user_create(
    *,
    email: str,
    password_hash: str,
    full_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    actor: AbstractBaseUser | None = None,
) -> int:
    """Create an account through ``create_user_with_profile``; return the new user's id.

    ``password_hash`` is a Django password hash (or an unusable password, ``!...``): the
    database never sees a raw password. The staff flags are then set by ``set_user_staff`` in
    the caller's context, which only a superuser or the service context passes (audited
    ``staff_flag_changed``). ``actor``: the staff member who makes the account (the admin), the
    ``user_created`` row's actor (by default the new user themself, as at sign-up).

    Raises RegistrationError (``email``: ``invalid``, or ``conflict`` when taken; ``is_staff``
    when the caller may not set the flags)
    and writes nothing when refused.
    """
    email = _valid_email(email)
    try:
        with transaction.atomic():
            # create_user_with_profile is open to anyone (sign-up): the service context here
            # only makes the staff member the audit row's actor (an impersonator still wins).
            as_actor = rls.service_context(actor=actor) if actor is not None else nullcontext()
            with as_actor, connection.cursor() as cursor:
                cursor.execute(
                    "SELECT create_user_with_profile(p_email => %s, p_password_hash => %s,"
                    " p_full_name => %s)",
                    [email, password_hash, full_name.strip()],
                )
                user_id = cursor.fetchone()[0]
            if is_staff or is_superuser:
                staff.user_set_staff(user_id=user_id, is_staff=is_staff, is_superuser=is_superuser)
    except staff.StaffFlagsRefused as refused:
        raise RegistrationError(refused.code, refused.message, field="is_staff") from None
    except DatabaseError as exc:
        if db_errors.constraint_name(exc) == "users_email_key":
            raise RegistrationError(db_errors.CONFLICT, EMAIL_TAKEN, field="email") from None
        if db_errors.sqlstate(exc) == db_errors.INVALID_PARAMETER:
            raise RegistrationError(db_errors.INVALID, EMAIL_INVALID, field="email") from None
        raise
    return user_id


def user_register(*, email: str, password: str, full_name: str = "") -> int:
    """Make a self-registered account: validate and hash the password, then :func:`user_create`;
    return the new user's id. The sign-up flow of the page and the API around it (mails) is
    :func:`accounts.registration.registration_submit`.

    Raises RegistrationError (``email`` or ``password``) and writes nothing when refused.
    """
    email = _valid_email(email)
    try:
        # The user model by name: it creates accounts through this module (UserManager).
        user = get_user_model()(email=email, full_name=full_name)
        validate_password(password, user)
    except ValidationError as exc:
        message = " ".join(exc.messages)
        raise RegistrationError(db_errors.INVALID, message, field="password") from None
    return user_create(email=email, password_hash=make_password(password), full_name=full_name)
