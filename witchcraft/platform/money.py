"""Money: US dollars as ``numeric(12,6)``, never floats (DESIGN.md)."""

from decimal import Decimal

from django.db import models

MONEY_DIGITS = 12
MONEY_PLACES = 6
MICRO_DOLLAR = Decimal("0.000001")


def money_field(**kwargs) -> models.DecimalField:
    """A ``numeric(12,6)`` column; defaults to 0 unless told otherwise."""
    kwargs.setdefault("default", Decimal(0))
    return models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, **kwargs)
