"""Two-factor sign-in (TOTP, django-otp): whether a user needs the second step."""

from django_otp.plugins.otp_totp.models import TOTPDevice

from witchcraft import rls


def requires_second_factor(user) -> bool:
    """Return True when the user has a confirmed authenticator app."""
    with rls.service_context():
        return TOTPDevice.objects.filter(user=user, confirmed=True).exists()
