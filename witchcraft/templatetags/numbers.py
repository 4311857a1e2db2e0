"""``{% load numbers %}``: the one number format of every page (witchcraft/platform/money.py).

``{{ cost|money }}`` writes dollars (2 decimals from $1 up, 4 below, thousands separators);
``{{ ratio|percent }}`` writes a ratio as a percentage; ``{{ share|percent_of_100 }}`` writes a
figure that is already a percentage; ``{{ seconds|duration }}`` a length of time
(witchcraft/platform/durations.py)."""

from decimal import Decimal

from django import template

from witchcraft.platform.durations import duration_text
from witchcraft.platform.money import money_text, percent_text

register = template.Library()


@register.filter
def money(amount) -> str:
    return money_text(amount)


@register.filter
def percent(ratio) -> str:
    return percent_text(ratio)


@register.filter
def percent_of_100(value) -> str:
    """A figure already in percent (81.25) as "81.3 %"."""
    if value is None or value == "":
        return "—"
    try:
        return percent_text(Decimal(str(value)) / 100)
    except ArithmeticError:
        return "—"


@register.filter
def duration(seconds) -> str:
    """Seconds (12600.0) as "3.5 h"; None as an em dash."""
    return duration_text(seconds)
