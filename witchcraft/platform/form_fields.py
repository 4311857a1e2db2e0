"""Form fields for what clients type into pages: each refuses, as a form error, any value the
code behind it or PostgreSQL cannot take, so that hostile input never becomes a 500.

Django's own fields leave gaps: ``DecimalField`` takes ``1e999999999`` (PostgreSQL's numeric
overflows), ``IntegerField`` takes 400 digits (no integer column holds them), ``DateField``
takes ``0001-01-01`` (one day earlier is no ``date``, so any period arithmetic overflows), and
``DateTimeField`` takes years whose conversion to UTC overflows. The bounds here are the
product's, far inside every type's. (``CharField`` already refuses NUL characters.)

The staff dashboard and the self-service pages build their filter and input forms from these;
a django-filter filter takes one as its ``field_class``. The API's equivalents are the types
of witchcraft.platform.api_types.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from witchcraft.platform.api_types import MAX_ID

# Days and instants a page may name: the product's data all lies in between, and a period
# reaching a few years either side still fits Python's and PostgreSQL's types.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2999, 12, 31)
OUT_OF_RANGE_DAY = f"Enter a date between {FIRST_DAY} and {LAST_DAY}."
OUT_OF_RANGE_NUMBER = "Enter a finite number between %(low)s and %(high)s."
NOT_A_NUMBER = "Enter a number."
NOT_A_MOMENT = "Enter a valid date and time."


class Day(forms.DateField):
    """A date between FIRST_DAY and LAST_DAY."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators += [
            MinValueValidator(FIRST_DAY, OUT_OF_RANGE_DAY),
            MaxValueValidator(LAST_DAY, OUT_OF_RANGE_DAY),
        ]


class Moment(forms.DateTimeField):
    """A date and time between FIRST_DAY and the end of LAST_DAY (in the current time zone
    when it carries no offset): an aware datetime."""

    def to_python(self, value):
        try:
            moment = super().to_python(value)
        except (OverflowError, ValueError):  # the time zone's offset pushed it past year 1
            raise ValidationError(NOT_A_MOMENT, code="invalid") from None
        if moment is None:
            return None
        first = datetime.combine(FIRST_DAY, time.min, tzinfo=UTC)
        last = datetime.combine(LAST_DAY, time.max, tzinfo=UTC)
        try:
            in_range = first <= moment <= last
        except (OverflowError, TypeError):
            in_range = False
        if not in_range or timezone.is_naive(moment):
            raise ValidationError(OUT_OF_RANGE_DAY, code="out_of_range")
        return moment


class Number(forms.DecimalField):
    """A finite decimal between ``min_value`` and ``max_value`` (both required), with at most
    ``decimal_places`` digits after the point (default 6: the money columns')."""

    def __init__(self, *, min_value, max_value, decimal_places: int = 6, **kwargs):
        low, high = Decimal(min_value), Decimal(max_value)
        digits = len(str(int(max(abs(low), abs(high))))) + decimal_places
        super().__init__(
            min_value=low,
            max_value=high,
            max_digits=digits,
            decimal_places=decimal_places,
            error_messages={
                "invalid": NOT_A_NUMBER,
                "min_value": OUT_OF_RANGE_NUMBER % {"low": low, "high": high},
                "max_value": OUT_OF_RANGE_NUMBER % {"low": low, "high": high},
                "max_digits": OUT_OF_RANGE_NUMBER % {"low": low, "high": high},
                **kwargs.pop("error_messages", {}),
            },
            **kwargs,
        )


class WholeNumber(forms.IntegerField):
    """An integer between ``min_value`` (default 0) and ``max_value`` (default: the largest
    bigint), so that no integer column overflows."""

    def __init__(self, *, min_value: int = 0, max_value: int = MAX_ID, **kwargs):
        super().__init__(min_value=min_value, max_value=max_value, **kwargs)

    def to_python(self, value):
        if isinstance(value, str) and len(value.strip()) > 40:  # no int of ours is that long
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class Email(forms.EmailField):
    """An email address as users' are stored: at most 254 characters, trimmed, lower-case."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def to_python(self, value):
        return super().to_python(value).lower()
