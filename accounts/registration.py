"""Sign-up: the one flow the page (``/auth/register/``) and the API (``POST /auth/register``)
call, mails included. Its own module because it composes accounts.services (the account) and
accounts.recovery (the confirmation link), and the user model's module imports the services.
"""

from __future__ import annotations

from django.urls import reverse

from accounts import recovery, services
from witchcraft.platform import db_errors
from witchcraft.platform.mail import mail_send, site_url

ALREADY_REGISTERED = "already_registered"


def _mail_already_registered(email: str) -> None:
    mail_send(
        to=email,
        subject="Someone tried to create an account with your address",
        template=ALREADY_REGISTERED,
        context={
            "login_link": site_url(reverse("accounts:login")),
            "reset_link": site_url(reverse("accounts:password_reset")),
        },
    )


def registration_submit(
    *, email: str, password: str, full_name: str = "", ip: str = ""
) -> int | None:
    """Register ``email``; return the new user's id, or None when the address already has an
    account.

    A new account is mailed its confirmation link; the owner of a taken address is mailed that
    someone tried (``already_registered``) and nothing else happens, so the caller answers both
    alike and the same fast (each mail is queued after commit and rendered by the worker): the
    answer never tells who has an account. Raises services.RegistrationError for a bad address
    or password, and writes nothing then.
    """
    try:
        user_id = services.user_register(email=email, password=password, full_name=full_name)
    except services.RegistrationError as refused:
        if refused.code != db_errors.CONFLICT:
            raise
        _mail_already_registered(email)
        return None
    recovery.verification_send(user_id=user_id, ip=ip)
    return user_id
