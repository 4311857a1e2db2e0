"""Who may read ``/metrics``: a bearer token or an allow-listed address, from the environment.

``METRICS_TOKEN``: ``Authorization: Bearer <token>`` (compared in constant time).
``METRICS_ALLOWED_IPS``: addresses or networks (``10.0.0.0/8``, ``192.0.2.7``) whose requests
need no token. The address is the client's as :func:`witchcraft.platform.rls.client_ip` finds it:
behind a proxy named in ``TRUSTED_PROXIES``, the client it forwards, never the proxy itself. Anyone
else, and everyone when neither is configured, gets the site's ordinary 404: the endpoint does
not admit that it exists.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from witchcraft.platform.rls import client_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def allowed_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Parse METRICS_ALLOWED_IPS; a wrong entry is a configuration error, not a silent skip."""
    networks = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"METRICS_ALLOWED_IPS: {text!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def _token_matches(request) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _address_allowed(request) -> bool:
    networks = allowed_networks(tuple(settings.METRICS_ALLOWED_IPS))
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.1.2.3 from a dual-stack socket
    return any(address in network for network in networks)


def may_scrape(request) -> bool:
    return _token_matches(request) or _address_allowed(request)
