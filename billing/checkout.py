"""The payment provider's checkout: where a user pays for an upgrade.

Each paid tier has a checkout link (``BILLING_CHECKOUT_LINKS``, e.g. a Stripe Payment Link
whose metadata names the tier). The user is sent there with their id as
``client_reference_id``; the provider's ``checkout.session.completed`` webhook carries it back
and the upgrade takes effect (billing/webhooks.py). Nothing is charged by this server.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings


def payments_configured() -> bool:
    """True when a provider and its webhook secret are set: payments can be taken and heard."""
    return bool(settings.BILLING_PROVIDER and settings.BILLING_WEBHOOK_SECRET)


def checkout_link(*, tier_slug: str) -> str | None:
    """The configured checkout link of the tier, or None (no provider, or none for the tier)."""
    if not payments_configured():
        return None
    return settings.BILLING_CHECKOUT_LINKS.get(tier_slug) or None


def checkout_url(*, link: str, user_id: int, email: str) -> str:
    """``link`` with the user's reference and address added to its query string."""
    parts = urlsplit(link)
    extra = urlencode({"client_reference_id": str(user_id), "prefilled_email": email})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def checkout_origins() -> list[str]:
    """The origins (scheme://host) of the configured checkout links; none without payments."""
    if not payments_configured():
        return []
    origins = set()
    for link in settings.BILLING_CHECKOUT_LINKS.values():
        parts = urlsplit(link or "")
        if parts.scheme in ("https", "http") and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}")
    return sorted(origins)
