"""The one number format: money with 2 decimals from $1 up and 4 below, thousands separators,
percentages from ratios."""

from decimal import Decimal

import pytest
from django.template import Context, Template

from witchcraft.platform.durations import duration_text
from witchcraft.platform.money import money_text, percent_text


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("0"), "$0.00"),
        (Decimal("0.000042"), "<$0.0001"),
        (Decimal("0.00042"), "$0.0004"),
        (Decimal("0.123456"), "$0.1235"),
        (Decimal("0.99995"), "$1.00"),
        (Decimal("1"), "$1.00"),
        (Decimal("356.774"), "$356.77"),
        (Decimal("1234567.891"), "$1,234,567.89"),
        (Decimal("-12.5"), "-$12.50"),
        (Decimal("-0.25"), "-$0.2500"),
        (3.5, "$3.50"),
        ("0.5", "$0.5000"),
        (None, "—"),
        ("not a number", "—"),
        (Decimal("NaN"), "—"),
    ],
)
def test_money_text(amount, text):
    assert money_text(amount) == text


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        (Decimal("0.75236000000000000000"), "75.2 %"),
        (0, "0.0 %"),
        (Decimal("12.5"), "1,250.0 %"),
        (None, "—"),
    ],
)
def test_percent_text(ratio, text):
    assert percent_text(ratio) == text


def test_template_filters():
    rendered = Template(
        "{% load numbers %}{{ a|money }} {{ b|money }} {{ c|percent }} {{ d|percent_of_100 }}"
    ).render(Context({"a": Decimal("2.5"), "b": Decimal("0.01234"), "c": 0.5, "d": 81.25}))
    assert rendered == "$2.50 $0.0123 50.0 % 81.2 %"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (-3, "0 s"),  # a clock a little ahead of the database's: never a negative age
        (40.4, "40 s"),
        (119, "119 s"),
        (120, "2 min"),
        (1200, "20 min"),
        (7200, "2.0 h"),
        (27 * 3600, "27.0 h"),
        (3 * 86400, "3.0 days"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text
    assert Template("{% load numbers %}{{ s|duration }}").render(Context({"s": seconds})) == text
