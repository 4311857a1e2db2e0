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


def money_text(amount, currency_sign: str = "$") -> str:
    """The one way money is written for people: two decimals from $1 up, four below (a request
    costs fractions of a cent; less than $0.0001 reads "<$0.0001"), thousands separators, the
    sign in front ("-$1,234.50"). ``None`` (no figure) is an em dash."""
    if amount is None or amount == "":
        return "—"
    try:
        value = Decimal(str(amount))
    except ArithmeticError:
        return "—"
    if not value.is_finite():
        return "—"
    places = 2 if abs(value) >= Decimal("0.99995") else 4
    rounded = abs(value).quantize(Decimal(1).scaleb(-places))
    if rounded == 0:
        return f"{currency_sign}0.00" if value == 0 else f"<{currency_sign}0.0001"
    sign = "-" if value < 0 else ""
    return f"{sign}{currency_sign}{rounded:,.{places}f}"


def percent_text(ratio, places: int = 1) -> str:
    """A ratio (0.75236) as a percentage for people ("75.2 %"); ``None`` is an em dash."""
    if ratio is None or ratio == "":
        return "—"
    try:
        value = Decimal(str(ratio)) * 100
    except ArithmeticError:
        return "—"
    if not value.is_finite():
        return "—"
    return f"{value:,.{places}f} %"
