"""Usage over JSON: record AI requests (one, or up to 1,000 at once), read the roll-ups, and the
public model catalog. The same services and selectors as the pages (usage.services,
usage.selectors).

A record is idempotent by its ``request_id``: the same request again changes nothing (200,
``duplicate: true``); the same ``request_id`` with other content is a 409. The server prices
every record from the catalog; a record names the reservation of ``POST /quota/consume`` it
settles (``reservation_id``). Bad input is a 422 naming the field, and nothing is written.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ninja import Query, Router, Status

from accounts import scopes
from accounts.bearer import scoped
from usage import selectors, services
from usage.schemas import (
    MICRO_DOLLAR,
    CatalogModelOut,
    DailyOut,
    DailyQuery,
    MonthlyItemOut,
    SummaryOut,
    UsageBatchIn,
    UsageBatchOut,
    UsageIn,
    UsageOut,
)
from witchcraft.platform import db_errors, refusals, replica
from witchcraft.platform.api_errors import ApiError

router = Router(tags=["usage"])

RANGE_BACKWARDS = "`from` must not be after `to`."
RANGE_TOO_LONG = f"At most {selectors.MAX_DAILY_DAYS} days at once."
UNKNOWN_MODEL = "No model of the catalog has this name."


def _answer(result: services.RecordResult) -> refusals.Answer:
    """How a refused record is answered: its status (POST /usage) and error code (both
    endpoints). record_ai_usage_batch words its refusals in the vocabulary of db_errors; a code
    it might add outside it is a bad record, as it always was."""
    return refusals.ANSWERS.get(result.error_code, refusals.ANSWERS[db_errors.INVALID])


def _error(result: services.RecordResult) -> dict[str, Any]:
    return {
        "code": _answer(result).api_code,
        "message": result.error_message,
        "field": result.error_field,
    }


def _totals(totals: selectors.UsageTotals) -> dict[str, Any]:
    return asdict(totals)


@router.post(
    "/usage",
    auth=scoped(scopes.USAGE_RECORD),
    response={200: UsageOut, 201: UsageOut},
    summary="Record one AI request",
)
def usage_create(request, payload: UsageIn):
    """Prices the request from the catalog and books it against your quota, minus what the
    reservation named by `reservation_id` (from `POST /quota/consume`) held, which it settles.
    201 when recorded; 200 with `duplicate: true` and the first id when this `request_id` was
    recorded before with the same content (nothing changes); 409 when it was recorded with
    other content, or the reservation was already settled or has expired (record without
    `reservation_id` then); 404 for an agent session, message or reservation that is not yours;
    422 naming the field for bad input (`cost`, `reserved_tokens` and `reserved_cost` are
    refused)."""
    (result,) = services.usage_record_batch(
        user_id=request.user.pk,
        records=[payload.as_record()],
        access_token_id=services.access_token_id_of(request),
    )
    if result.status == services.REFUSED:
        status = _answer(result).api_status
        error = _error(result)
        details: Any = [{"field": error["field"], "message": error["message"]}]
        if status == 409:
            details = {"field": error["field"], "request_id": payload.request_id}
        elif status == 404:
            details = {"field": error["field"]}
        raise ApiError(status, result.error_message, code=error["code"], details=details)
    body = UsageOut(
        id=result.usage_id,
        request_id=payload.request_id,
        cost=result.cost,
        total_tokens=result.total_tokens,
        duplicate=result.status == services.DUPLICATE,
    )
    return Status(200 if body.duplicate else 201, body)


@router.post(
    "/usage/batch",
    auth=scoped(scopes.USAGE_RECORD),
    response=UsageBatchOut,
    exclude_none=True,
    summary="Record up to 1,000 AI requests at once",
)
def usage_batch(request, payload: UsageBatchIn):
    """Each record is answered on its own, in order: `recorded` (with its id), `duplicate`
    (recorded before with the same content: the first id, nothing changes) or `refused` with
    an error (`validation_error`, `not_found`, or `conflict` for a `request_id` recorded with
    other content or a reservation settled, expired or named twice). A record that does not
    fit the schema refuses the whole batch with 422 naming `records.<index>.<field>`; more
    than 1,000 records is a 422 too."""
    results = services.usage_record_batch(
        user_id=request.user.pk,
        records=[record.as_record() for record in payload.records],
        access_token_id=services.access_token_id_of(request),
    )
    counts = {services.RECORDED: 0, services.DUPLICATE: 0, services.REFUSED: 0}
    answers = []
    for result in results:
        counts[result.status] += 1
        answers.append(
            {
                "index": result.index,
                "request_id": result.request_id,
                "status": result.status,
                "id": result.usage_id,
                "error": _error(result) if result.status == services.REFUSED else None,
            }
        )
    return {
        "results": answers,
        "recorded": counts[services.RECORDED],
        "duplicates": counts[services.DUPLICATE],
        "refused": counts[services.REFUSED],
    }


@router.get(
    "/usage/summary",
    auth=scoped(scopes.USAGE_READ),
    response=SummaryOut,
    summary="Your activity per UTC day",
)
def usage_summary(request, days: int = Query(30, ge=1, le=366)):
    """One item per UTC day of the `days` days ending today, oldest first, idle days
    included: requests, failures, tokens, cost, agent sessions started, messages."""
    activity = replica.read(
        request, lambda: selectors.activity_summary(user_id=request.user.pk, days=days)
    )
    items = [{**asdict(item), "cost": item.cost.quantize(MICRO_DOLLAR)} for item in activity]
    totals = {
        key: sum((item[key] for item in items), Decimal(0) if key == "cost" else 0)
        for key in ("requests", "failures", "tokens", "cost", "sessions_started", "messages")
    }
    return {"days": days, "items": items, "totals": totals}


@router.get(
    "/usage/daily",
    auth=scoped(scopes.USAGE_READ),
    response=DailyOut,
    by_alias=True,
    summary="Your usage per UTC day, provider and model",
)
def usage_daily(request, filters: Query[DailyQuery]):
    """Rows of the daily roll-up from `from` to `to` (UTC days, inclusive, at most 366 days;
    default the last 30 days), oldest first; `model` keeps one model's rows."""
    date_to = filters.date_to or datetime.now(UTC).date()
    default_from = date.min + timedelta(days=29)  # no overflow for a `to` in year 1
    date_from = filters.date_from or max(date_to, default_from) - timedelta(days=29)
    if date_from > date_to:
        raise ApiError(
            422, RANGE_BACKWARDS, details=[{"field": "from", "message": RANGE_BACKWARDS}]
        )
    if (date_to - date_from).days >= selectors.MAX_DAILY_DAYS:
        raise ApiError(422, RANGE_TOO_LONG, details=[{"field": "from", "message": RANGE_TOO_LONG}])
    model_ids = None
    if filters.model is not None:
        model_ids = selectors.model_ids_named(name=filters.model)
        if not model_ids:
            raise ApiError(
                422, UNKNOWN_MODEL, details=[{"field": "model", "message": UNKNOWN_MODEL}]
            )
    rows = replica.read(
        request,
        lambda: selectors.usage_daily_for_user(
            user_id=request.user.pk, date_from=date_from, date_to=date_to, model_ids=model_ids
        ),
    )
    items = [
        {"day": r.day, "provider": r.provider, "model": r.model, **_totals(r.totals)} for r in rows
    ]
    return {"date_from": date_from, "date_to": date_to, "items": items}


@router.get(
    "/usage/monthly",
    auth=scoped(scopes.USAGE_READ),
    response=list[MonthlyItemOut],
    summary="Your usage per UTC month",
)
def usage_monthly(request, limit: int = Query(24, ge=1, le=120)):
    """Your latest `limit` months, newest first."""
    rows = replica.read(
        request, lambda: selectors.usage_monthly_for_user(user_id=request.user.pk, limit=limit)
    )
    return [{"year": r.year, "month": r.month, **_totals(r.totals)} for r in rows]


@router.get(
    "/catalog/models",
    auth=None,
    response=list[CatalogModelOut],
    tags=["catalog"],
    summary="The models you can use, with prices",
)
def catalog_models(request):
    """Active models of active providers; prices in US dollars per million tokens. No token
    needed."""
    return [asdict(m) for m in selectors.catalog_models()]
