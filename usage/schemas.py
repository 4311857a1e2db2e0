"""The shapes of the usage API (usage.api): what a client may send, with the limits that make
absurd values a 422 naming the field, and what it gets back."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import BeforeValidator, ConfigDict

from usage import services
from witchcraft.platform.api_types import (
    CatalogId,
    Id,
    Line,
    Millis,
    StrictInput,
    Text,
    Tokens,
    json_object,
    refused,
)

MAX_METADATA_BYTES = 4_096
MAX_METADATA_DEPTH = 8
MICRO_DOLLAR = Decimal("0.000001")

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` is a day here (not a timestamp nor a datetime)."""
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError("must be a day written YYYY-MM-DD")


Day = Annotated[date, BeforeValidator(_iso_day)]
Metadata = json_object(MAX_METADATA_BYTES, MAX_METADATA_DEPTH)

# Fields clients used to send and may not any more (issue 15): the server prices every request,
# and what was reserved is the server's record, named by the reservation's id.
COST_REFUSED = "cost is not accepted: the server prices every request from the catalog."
RESERVED_REFUSED = (
    "reserved_tokens and reserved_cost are no longer accepted: pass reservation_id, the id "
    "POST /quota/consume answered."
)
ClientCost = refused(COST_REFUSED)
ClientReservation = refused(RESERVED_REFUSED)
# What a schema declares only to refuse it: never passed on to the services.
REFUSED_FIELDS = frozenset({"cost", "reserved_tokens", "reserved_cost"})


class UsageIn(StrictInput):
    """One AI request as the client saw it. Name the model by ``model`` (its name; add
    ``provider`` when several providers share the name) or by ``model_id``."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    request_id: Line = Field(
        min_length=1, max_length=100, description="your id of the request: retries are safe"
    )
    provider: Line | None = Field(None, min_length=1, max_length=40, description="slug")
    provider_id: CatalogId | None = None
    model: Line | None = Field(None, min_length=1, max_length=100, description="model name")
    model_id: CatalogId | None = None
    input_tokens: Tokens = Field(description="including cached input tokens")
    output_tokens: Tokens = Field(description="including reasoning tokens")
    cached_input_tokens: Tokens = 0
    reasoning_tokens: Tokens = 0
    latency_ms: Millis | None = None
    time_to_first_token_ms: Millis | None = None
    status: Literal["success", "error", "timeout", "cancelled", "rejected"] = "success"
    error_code: Line | None = Field(None, max_length=100)
    error_message: Text | None = Field(
        None,
        max_length=1000,
        description="what the provider said, for a request that did not succeed (kept for "
        "staff, credentials redacted)",
    )
    agent_session_id: Id | None = None
    agent_message_id: Id | None = None
    reservation_id: Id | None = Field(
        None,
        description="the reservation of POST /quota/consume for this request: the quota is "
        "charged the actual cost minus what it held, once",
    )
    metadata: Metadata = Field(default_factory=dict, description="a small JSON object (4 KB)")

    cost: ClientCost = None
    reserved_tokens: ClientReservation = None
    reserved_cost: ClientReservation = None

    def as_record(self) -> dict[str, Any]:
        """The record for ``usage_record_batch``, without what was not given."""
        return self.model_dump(exclude_none=True, exclude=REFUSED_FIELDS)


class UsageOut(Schema):
    id: int
    request_id: str
    cost: Decimal = Field(description="US dollars, priced by the server from the catalog")
    total_tokens: int
    duplicate: bool = Field(description="true: recorded before, nothing changed")


class UsageBatchIn(StrictInput):
    records: list[UsageIn] = Field(min_length=1, max_length=services.MAX_BATCH_RECORDS)


class RecordErrorOut(Schema):
    code: str = Field(description="validation_error, not_found or conflict")
    message: str
    field: str | None = None


class RecordResultOut(Schema):
    index: int
    request_id: str | None = None
    status: Literal["recorded", "duplicate", "refused"]
    id: int | None = None
    error: RecordErrorOut | None = None


class UsageBatchOut(Schema):
    results: list[RecordResultOut]
    recorded: int
    duplicates: int
    refused: int


class DayActivityOut(Schema):
    day: date
    requests: int
    failures: int
    tokens: int
    cost: Decimal
    sessions_started: int
    messages: int


class SummaryTotalsOut(Schema):
    requests: int
    failures: int
    tokens: int
    cost: Decimal
    sessions_started: int
    messages: int


class SummaryOut(Schema):
    days: int
    items: list[DayActivityOut]
    totals: SummaryTotalsOut


class TotalsOut(Schema):
    requests: int
    successes: int
    failures: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    total_tokens: int
    cost: Decimal
    average_latency_ms: int | None


class DailyItemOut(TotalsOut):
    day: date
    provider: str | None
    model: str | None


class DailyOut(Schema):
    date_from: date = Field(serialization_alias="from")
    date_to: date = Field(serialization_alias="to")
    items: list[DailyItemOut]


class DailyQuery(Schema):
    model_config = ConfigDict(protected_namespaces=())

    date_from: Day | None = Field(None, alias="from", description="UTC day; default: to - 29")
    date_to: Day | None = Field(None, alias="to", description="UTC day; default: today")
    model: Line | None = Field(None, min_length=1, max_length=100, description="model name")


class MonthlyItemOut(TotalsOut):
    year: int
    month: int


class CatalogModelOut(Schema):
    id: int
    name: str
    display_name: str
    provider_id: int
    provider: str
    provider_name: str
    is_local: bool
    context_window: int
    input_price_per_million: Decimal
    output_price_per_million: Decimal
    cached_input_price_per_million: Decimal
