"""Field types every API schema shares: what PostgreSQL can store, and the limits that make an
absurd value a 422 naming the field (witchcraft.api) rather than a database error."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

MAX_TOKENS = 10_000_000  # of one AI request: ten times the largest context window
MAX_LATENCY_MS = 3_600_000  # one hour
MAX_COST = Decimal(10_000)  # US dollars of one AI request
MAX_ID = 2**63 - 1
MAX_INT32 = 2**31 - 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def storable_text(value: str) -> str:
    """Text PostgreSQL can store: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def single_line(value: str) -> str:
    """One line of printable text (identifiers, codes, names)."""
    storable_text(value)
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters or line breaks")
    return value


def storable_json(value: Any, *, max_bytes: int, max_depth: int) -> Any:
    """JSON PostgreSQL can store (clean text, finite numbers), bounded in size and depth."""

    def walk(node: Any, depth: int) -> None:
        if depth > max_depth:
            raise ValueError(f"must not nest deeper than {max_depth} levels")
        if isinstance(node, str):
            storable_text(node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError("numbers must be finite")
        elif isinstance(node, dict):
            for key, item in node.items():
                storable_text(key)
                walk(item, depth + 1)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth + 1)

    walk(value, 1)
    if len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()) > max_bytes:
        raise ValueError(f"must be at most {max_bytes:,} bytes as compact JSON")
    return value


def json_object(max_bytes: int, max_depth: int = 8):
    """A JSON object type of at most ``max_bytes`` and ``max_depth`` levels."""
    return Annotated[
        dict[str, Any],
        AfterValidator(partial(storable_json, max_bytes=max_bytes, max_depth=max_depth)),
    ]


def json_value(max_bytes: int, max_depth: int = 32):
    """Any JSON value of at most ``max_bytes`` and ``max_depth`` levels."""
    return Annotated[
        Any, AfterValidator(partial(storable_json, max_bytes=max_bytes, max_depth=max_depth))
    ]


def refused(message: str):
    """A field a client must no longer send (it was removed): absent from the OpenAPI document,
    and when sent anyway a 422 naming it with ``message`` (what to send instead). Declare it
    ``= None``; it never holds a value."""

    def refuse(value: Any) -> Any:
        raise PydanticCustomError("field_refused", message)

    return Annotated[SkipJsonSchema[Any], BeforeValidator(refuse)]


Text = Annotated[str, AfterValidator(storable_text)]
Line = Annotated[str, AfterValidator(single_line)]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS, strict=True)]
Millis = Annotated[int, Field(ge=0, le=MAX_LATENCY_MS, strict=True)]
Money = Annotated[Decimal, Field(ge=0, le=MAX_COST, decimal_places=6, allow_inf_nan=False)]
Id = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
CatalogId = Annotated[int, Field(ge=1, le=MAX_INT32, strict=True)]


class StrictInput(BaseModel):
    """A request body that accepts only its own fields, as a plain pydantic model. ninja's
    Schema is made for reading Django objects into responses: on input its wrap validator
    validated a body with ``extra="forbid"`` twice, and wrapped it for attribute access (a
    third of a 1,000-record batch's time: bench/README.md)."""

    model_config = ConfigDict(extra="forbid")


class ObjectInput(Schema):
    """A request body that must be a JSON object (ninja would read the fields of a list or
    null as missing, and accept it when every field has a default)."""

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, value: Any) -> Any:
        if not isinstance(getattr(value, "_obj", value), dict):
            raise ValueError("must be a JSON object")
        return value
