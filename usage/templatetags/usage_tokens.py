"""``{% load usage_tokens %}``: this month's spend per API token, for pages of other apps
(the tokens page of accounts, which may not import usage: the template composes them).

``{% token_spend user_id as spend %}`` reads usage.drilldown.token_spend_this_month once;
``{{ spend|spend_of:token.id }}`` is one token's TokenSpend (None when it sent nothing this
month), ``spend.no_token`` what no token sent, ``spend.others`` the tokens not listed (deleted
ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django import template

from usage.drilldown import TokenSpend, token_spend_this_month

register = template.Library()


@dataclass(frozen=True)
class SpendByToken:
    by_id: dict[int, TokenSpend]
    no_token: TokenSpend
    all: list[TokenSpend]

    def others(self, shown: list) -> TokenSpend | None:
        """What the tokens not in ``shown`` (deleted ones, or past the page's list) sent."""
        ids = {token["id"] if isinstance(token, dict) else token.id for token in shown}
        rest = [s for s in self.all if s.token_id is not None and s.token_id not in ids]
        if not any(s.requests for s in rest):
            return None
        cost = sum((s.cost for s in rest), Decimal(0))
        return TokenSpend(None, "Other tokens", "", sum(s.requests for s in rest), cost)


@register.simple_tag
def token_spend(user_id: int) -> SpendByToken:
    spends = token_spend_this_month(user_id=user_id)
    return SpendByToken(
        {s.token_id: s for s in spends if s.token_id is not None}, spends[-1], spends
    )


@register.filter
def spend_of(spend: SpendByToken, token_id: int) -> TokenSpend | None:
    return spend.by_id.get(token_id)


@register.filter
def spend_of_others(spend: SpendByToken, shown: list) -> TokenSpend | None:
    return spend.others(shown)
