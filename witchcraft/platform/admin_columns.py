"""Change-list columns that write figures for people, the way every page does
(witchcraft/platform/money.py): money with 2 decimals from $1 up and 4 below, ratios as
percentages. Each column still sorts on its database field. CSV exports keep full precision."""

from collections.abc import Callable

from django.contrib import admin

from witchcraft.platform.money import money_text, percent_text


def money_column(field: str, description: str, *, currency_field: str | None = None) -> Callable:
    """A list_display column writing ``field`` with money_text. With ``currency_field``, an
    amount in another currency than USD is written without the dollar sign, then its code."""

    @admin.display(description=description, ordering=field)
    def column(obj) -> str:
        amount = getattr(obj, field)
        currency = getattr(obj, currency_field, "USD") if currency_field else "USD"
        if (currency or "USD").upper() == "USD":
            return money_text(amount)
        return f"{money_text(amount, currency_sign='')} {currency}"

    column.__name__ = field
    return column


def percent_column(field: str, description: str) -> Callable:
    """A list_display column writing the ratio ``field`` (0.75236) as a percentage (75.2 %)."""

    @admin.display(description=description, ordering=field)
    def column(obj) -> str:
        return percent_text(getattr(obj, field))

    column.__name__ = field
    return column


def metric_column(field: str, description: str, *, metric_field: str = "metric") -> Callable:
    """A column of a figure measured in the unit ``metric_field`` names: money for "cost",
    a whole count with thousands separators otherwise (tokens)."""

    @admin.display(description=description, ordering=field)
    def column(obj) -> str:
        value = getattr(obj, field)
        if getattr(obj, metric_field) == "cost":
            return money_text(value)
        return "—" if value is None else f"{value:,.0f}"

    column.__name__ = field
    return column
