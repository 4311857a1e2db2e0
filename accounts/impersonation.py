"""Impersonation (django-hijack): who may act as whom."""


def may_impersonate(*, hijacker, hijacked) -> bool:
    """Staff may impersonate active plain users: never a superuser, another staff member or
    themselves. Returns whether ``hijacker`` may act as ``hijacked``."""
    if hijacked is None or not hijacked.is_active or hijacked.pk == hijacker.pk:
        return False
    if hijacked.is_superuser or hijacked.is_staff:
        return False
    return bool(hijacker.is_active and hijacker.is_staff)
