"""``{% two_factor_enabled user as on %}``: whether a user has two-factor sign-in on (for
pages whose views do not pass it, such as the security page)."""

from django import template

from accounts import twofactor

register = template.Library()


@register.simple_tag
def two_factor_enabled(user) -> bool:
    """Return True when ``user`` has a confirmed authenticator app (request's context)."""
    return bool(user.is_authenticated) and twofactor.two_factor_enabled(user=user)
