"""System checks for configuration that must never reach production."""

from django.conf import settings
from django.core.checks import Error, register

E001 = "DEBUG is off but SECRET_KEY is the generated development key; set a real SECRET_KEY."


@register()
def check_secret_key(app_configs, **kwargs):
    """Refuse ``DEBUG=False`` with the development key (it sits in a file on this machine)."""
    if not settings.DEBUG and settings.SECRET_KEY.startswith(settings.DEV_SECRET_KEY_PREFIX):
        return [Error(E001, id="witchcraft.E001")]
    return []
