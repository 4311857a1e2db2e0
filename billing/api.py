"""Quotas over JSON: what is left this period, reserving an estimate before an AI call, and the
public list of plans. The same services and selectors as the pages (billing.services,
billing.selectors)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from ninja import Field, Router, Schema

from accounts import scopes
from accounts.bearer import scoped
from billing import selectors, services
from witchcraft.platform.api_errors import ApiError
from witchcraft.platform.api_types import Money, StrictInput, Tokens

router = Router(tags=["quota"])


NO_QUOTA = "Your account has no quota yet."
REFUSED = {
    services.REASON_TOKENS_EXCEEDED: "This request would exceed your token limit for the period.",
    services.REASON_COST_EXCEEDED: "This request would exceed your cost limit for the period.",
    services.REASON_NO_QUOTA: NO_QUOTA,
}


class QuotaMetricOut(Schema):
    limit: int
    used: int
    remaining: int
    percent_used: Decimal | None = Field(description="null when the limit is 0")


class QuotaCostOut(Schema):
    limit: Decimal
    used: Decimal
    remaining: Decimal
    percent_used: Decimal | None = Field(description="null when the limit is 0")


class QuotaPeriodOut(Schema):
    start: datetime
    end: datetime


class QuotaOut(Schema):
    tokens: QuotaMetricOut
    cost: QuotaCostOut = Field(description="US dollars")
    period: QuotaPeriodOut


class ConsumeIn(StrictInput):
    """An estimate of the AI call about to be made."""

    tokens: Tokens
    cost: Money = Field(Decimal(0), description="US dollars")


class ReservationOut(Schema):
    id: int = Field(description="name it as `reservation_id` when you record the request")
    tokens: int
    cost: Decimal
    expires_at: datetime = Field(description="unsettled by then, its hold is given back")


class ConsumeOut(Schema):
    allowed: bool
    tokens_remaining: int
    cost_remaining: Decimal
    reservation: ReservationOut = Field(
        description="held for you until the usage record that names its id settles it"
    )


class TierOut(Schema):
    slug: str
    name: str
    description: str
    monthly_price: Decimal
    yearly_price: Decimal
    currency: str
    monthly_token_limit: int
    monthly_cost_limit: Decimal
    requests_per_minute: int
    features: dict[str, Any]


@router.get(
    "/quota",
    auth=scoped(scopes.USAGE_READ),
    response=QuotaOut,
    summary="Your limits and use this period",
)
def quota_get(request):
    """Limits, use, what is left and the percentage used, for tokens and cost (US dollars), in
    the current period (a UTC calendar month). 404 when the account has no quota."""
    quota = selectors.quota_remaining(user_id=request.user.pk)
    if quota is None:
        raise ApiError(404, NO_QUOTA)
    return {
        "tokens": {
            "limit": quota.tokens_limit,
            "used": quota.tokens_used,
            "remaining": quota.tokens_remaining,
            "percent_used": quota.tokens_percent_used,
        },
        "cost": {
            "limit": quota.cost_limit,
            "used": quota.cost_used,
            "remaining": quota.cost_remaining,
            "percent_used": quota.cost_percent_used,
        },
        "period": {"start": quota.period_start, "end": quota.period_end},
    }


@router.post(
    "/quota/consume",
    auth=scoped(scopes.USAGE_RECORD),
    response=ConsumeOut,
    summary="Reserve an estimate before an AI call",
    openapi_extra={
        "responses": {
            "402": {
                "description": "Quota exceeded: nothing reserved (`details`: reason, remaining)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        }
    },
)
def quota_consume(request, payload: ConsumeIn):
    """Reserves `tokens` and `cost` against your quota, or refuses with 402 `quota_exceeded`
    (the reason and what is left in `details`; nothing reserved). The reservation is held
    until the usage record that names its `id` (`reservation_id` on `POST /usage`, the batch or
    an assistant message's `usage`) settles it, charging the actual cost minus what it held;
    unsettled at `expires_at` (15 minutes by default), its hold is given back. A call that
    failed is recorded too (its status, the tokens it used, maybe 0) to settle it at once."""
    cost = payload.cost.quantize(Decimal("0.000001"))
    decision = services.quota_consume(user_id=request.user.pk, tokens=payload.tokens, cost=cost)
    if not decision.allowed:
        raise ApiError(
            402,
            REFUSED.get(decision.reason, NO_QUOTA),
            code="quota_exceeded",
            details={
                "reason": decision.reason,
                "tokens_remaining": decision.tokens_remaining,
                "cost_remaining": str(decision.cost_remaining),
                "requested": {"tokens": payload.tokens, "cost": str(cost)},
            },
        )
    return {
        "allowed": True,
        "tokens_remaining": decision.tokens_remaining,
        "cost_remaining": decision.cost_remaining,
        "reservation": {
            "id": decision.reservation_id,
            "tokens": payload.tokens,
            "cost": cost,
            "expires_at": decision.expires_at,
        },
    }


@router.get(
    "/catalog/tiers",
    auth=None,
    response=list[TierOut],
    tags=["catalog"],
    summary="The plans, with limits and prices",
)
def catalog_tiers(request):
    """Public plans in display order: monthly limits (tokens, cost in US dollars), requests
    per minute, prices. No token needed."""
    return [asdict(t) for t in selectors.public_tiers()]
