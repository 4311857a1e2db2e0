"""Hostile input for tests: the values an attacker sends, the forms a page offers, and a
fingerprint of what the database wrote (witchcraft/tests/test_hostile_input.py walks every page
and API operation with them).

Values are kept as they travel: query and form values already percent-encoded (so invalid
UTF-8 and lone surrogates can be sent at all), JSON values as raw JSON text (so ``1e999999``,
``NaN`` and ``"\\ud800"`` reach the server as a client would write them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, urljoin, urlsplit

from django.db import connection

# Percent-encoded values for query strings and form bodies.
FORM_VALUES: tuple[str, ...] = (
    "%00",
    "a%00b",
    "1e999999999",
    "-1e-999999",
    str(2**63),
    str(2**31),
    "9" * 400,
    "-1",
    "NaN",
    "Infinity",
    "-Infinity",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "-infinity",
    "294277-01-01",
    "0001-01-01T00%3A00",
    "9999-12-31T23%3A59%3A59",
    "0001-01-01+00%3A00%3A00",
    "9999-12-31+23%3A59%3A59",
    "Mars%2FOlympus",
    "..%2F..%2Fetc%2Fpasswd",
    "x" * 5000,
    "%ED%A0%80",  # a lone surrogate, as UTF-8 would encode it (invalid UTF-8)
    "%FF%FE",
    "%27%22%3C",
    "%20",
)

# One of each kind (the walk sends these field by field; the whole list goes in every field at
# once): NUL, numbers beyond range either way, dates and instants outside PostgreSQL's and
# Python's range, a time zone that does not exist, invalid UTF-8, over-long text.
CORE_FORM_VALUES: tuple[str, ...] = (
    "%00",
    "1e999999999",
    "-1e-999999",
    str(2**63),
    "NaN",
    "0001-01-01",
    "10000-01-01",
    "9999-12-31T23%3A59%3A59",
    "Mars%2FOlympus",
    "%ED%A0%80",
    "x" * 5000,
)

# The admin's many change lists share one guard (witchcraft.platform.admin_mixins), so each of their
# parameters gets a value of the kinds that reach the database differently.
ADMIN_VALUES: tuple[str, ...] = ("%00", str(2**63), "0001-01-01", "%ED%A0%80")

# Raw JSON texts for JSON bodies.
JSON_VALUES: tuple[str, ...] = (
    '"\\u0000"',
    '"a\\u0000b"',
    "1e999999999",
    "-1e-999999",
    str(2**63),
    str(2**31),
    "-1",
    "NaN",
    "Infinity",
    "-Infinity",
    '"NaN"',
    '"1e999999999"',
    '"0001-01-01"',
    '"9999-12-31"',
    '"10000-01-01"',
    '"-infinity"',
    '"294277-01-01"',
    '"0001-01-01T00:00:00Z"',
    '"9999-12-31T23:59:59+14:00"',
    '"Mars/Olympus"',
    json.dumps("x" * 100_000),
    '"\\ud800"',
    '"\\udfff x"',
    "[1, 2]",
    '{"a": 1}',
    "null",
    "true",
    '""',
    "1.5",
)

# Query-parameter names no page knows: a page must ignore them (or refuse them) too.
UNKNOWN_PARAMS: tuple[str, ...] = ("page", "x\x00")


def query(name: str, value: str) -> str:
    """``name=value`` with ``value`` already encoded."""
    return f"{quote(name, safe='')}={value}"


@dataclass
class Form:
    method: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> value shown
    hidden: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self, page_url: str):
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href", "").startswith("?"):
            self.links.append(a["href"])
        if tag == "form":
            action = urljoin(self.page_url, a.get("action") or self.page_url)
            self._form = Form(method=(a.get("method") or "get").lower(), action=action)
            self.forms.append(self._form)
        if self._form is None or "name" not in a:
            return
        name = a["name"]
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind == "hidden":
                self._form.hidden[name] = a.get("value", "")
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form.fields[name] = a.get("value", "on")
                else:
                    self._form.fields.setdefault(name, "")
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self._form.fields[name] = a.get("value", "")
        elif tag == "textarea":
            self._form.fields[name] = ""
        elif tag == "select":
            self._select = name
            self._form.fields.setdefault(name, "")
        elif tag == "button" and a.get("value"):
            self._form.hidden.setdefault(name, a["value"])
        if tag == "option" and self._select and "selected" in a:
            self._form.fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def forms_of(html: str, page_url: str) -> tuple[list[Form], set[str]]:
    """The forms of a page and the query parameter names of its ``?...`` links."""
    parser = _FormParser(page_url)
    parser.feed(html)
    names = set()
    for link in parser.links:
        for pair in link[1:].split("&"):
            if pair:
                names.add(pair.split("=", 1)[0])
    return parser.forms, names


def same_site_path(url: str) -> str:
    return urlsplit(url).path


def encoded_body(values: dict[str, str]) -> str:
    """A form body from already-encoded values."""
    return "&".join(query(name, value) for name, value in values.items())


def plain(value: str) -> str:
    """Encode a value the page showed, for a form body."""
    return quote(value, safe="")


def writes() -> dict[str, int]:
    """Rows inserted, updated or deleted per table so far in this transaction (the test's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables"
            " WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"
        )
        return dict(cursor.fetchall())


def written(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The tables whose rows changed between two ``writes()``."""
    return {
        table: count - before.get(table, 0)
        for table, count in after.items()
        if count != before.get(table, 0)
    }
