"""The API's one vocabulary of scopes, and which credential may hold which.

Every API operation declares the one scope it needs (accounts.bearer.scoped); a bearer token or a
service credential carries a set of them. What a credential may use is always recomputed from
what it stored and what its kind may hold *now* (``effective_scopes``): a user token that holds
``usage.record`` stops recording the moment a deployment turns ``USAGE_SELF_REPORTING`` off.

Who may record usage: token counts reported by whoever called the AI provider are the one input
the server cannot check. Where Witchcraft pays for the provider calls, only the backend that
makes them may report them, with a staff-issued service credential (accounts.service_credentials);
where users bring their own provider keys, a deployment may let their own tokens record
(``USAGE_SELF_REPORTING``), since the quota is then a budget they set for themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

USAGE_READ = "usage.read"
USAGE_RECORD = "usage.record"
AGENTS = "agents"
TOKENS_MANAGE = "tokens.manage"
ACCOUNT = "account"

# In the order pages and documents list them.
ALL: tuple[str, ...] = (USAGE_READ, USAGE_RECORD, AGENTS, TOKENS_MANAGE, ACCOUNT)

DESCRIPTIONS: dict[str, str] = {
    USAGE_READ: "read your usage, its daily and monthly roll-ups, summaries and quota",
    USAGE_RECORD: "record AI usage and reserve quota",
    AGENTS: "agent sessions, their messages, tool calls and feedback",
    TOKENS_MANAGE: "list, create and revoke access tokens",
    ACCOUNT: "your account (GET /me and other account operations)",
}

# A service credential acts for users, never as their account manager: it never lists or makes
# tokens and never reads or changes the account itself.
SERVICE_SCOPES: frozenset[str] = frozenset({USAGE_READ, USAGE_RECORD, AGENTS})


def user_token_scopes() -> frozenset[str]:
    """The scopes a user's own token may hold on this deployment: all of them, except
    ``usage.record`` unless ``settings.USAGE_SELF_REPORTING`` is on."""
    if settings.USAGE_SELF_REPORTING:
        return frozenset(ALL)
    return frozenset(ALL) - {USAGE_RECORD}


def default_client_scopes() -> frozenset[str]:
    """What a token gets when no scopes are asked for (the sign-in token of the client app)."""
    return user_token_scopes()


def effective_scopes(stored: Iterable[str] | None, *, service: bool = False) -> frozenset[str]:
    """The scopes a credential may use now: what it stored, within what its kind may hold."""
    allowed = SERVICE_SCOPES if service else user_token_scopes()
    return frozenset(stored or ()) & allowed


def ordered(scopes: Iterable[str]) -> list[str]:
    """``scopes`` in the vocabulary's order (unknown ones last, sorted), for display."""
    given = set(scopes)
    return [s for s in ALL if s in given] + sorted(given - set(ALL))
