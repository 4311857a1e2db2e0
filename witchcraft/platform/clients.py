"""Who is asking: the client's address behind trusted proxies, and the request ids a client may
give.

Ground floor, and free of Django: witchcraft/gunicorn.conf.py reads ``TRUSTED_PROXIES`` with it
too, so gunicorn and Django trust the same proxies.

The client's address follows the rule of gunicorn's ``forwarded_allow_ips`` (and of most
proxies' "real IP" modules): ``X-Forwarded-For`` is believed only when the connection comes
from a trusted proxy (``REMOTE_ADDR``); it is then read from the right, skipping trusted
proxies, and the first address that is not one is the client. Everything to the left of it
was written by the client and is ignored. An entry that is not an address stops the walk at
the last trusted hop: garbage is never believed, and never fails a request.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# TRUSTED_PROXIES entry for a proxy that reaches the site over a unix socket (gunicorn's
# BIND=unix:...), where the connection has no address (REMOTE_ADDR is empty).
UNIX_SOCKET = "unix"

# A request id a client may choose (X-Request-ID): letters, digits and -_. , at most 64.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Ids the site makes for its own work (rls.service_context's "job-<hex>", the /metrics
# scrape's "metrics-scrape"): a client may not pose as them.
RESERVED_REQUEST_ID_PREFIXES = ("job-", "metrics-")
# "[2001:db8::1]:443" or "192.0.2.1:443" (some proxies add the port), or a bare address.
_WITH_PORT = re.compile(r"\[(?P<bracketed>[0-9A-Fa-f:.]+)\](?::\d{1,5})?|(?P<v4>[0-9.]+):\d{1,5}")


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` (and ``X-Forwarded-Proto``, in gunicorn) is
    believed. ``address in proxies`` takes a string, as gunicorn asks it."""

    networks: tuple[Network, ...] = ()
    unix_socket: bool = False

    def __bool__(self) -> bool:
        return bool(self.networks) or self.unix_socket

    def __contains__(self, address: object) -> bool:
        parsed = parse_address(address) if isinstance(address, str) else None
        return parsed is not None and self.trusts(parsed)

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def trusted_proxies(text: str) -> TrustedProxies:
    """Parse ``TRUSTED_PROXIES``: comma-separated addresses or networks (CIDR), and ``unix``.

    Raises ValueError naming the first wrong entry: a typo must not silently trust nobody,
    or a wider network than meant (an address with host bits set under a prefix is refused).
    """
    networks: list[Network] = []
    unix_socket = False
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        if entry.lower() == UNIX_SOCKET:
            unix_socket = True
            continue
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError as error:
            raise ValueError(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or network ({error}); "
                "give addresses or networks like 127.0.0.1, ::1, 10.0.0.0/8, or unix, "
                "separated by commas"
            ) from None
        if network.version == 6 and network.network_address.ipv4_mapped is not None:
            raise ValueError(
                f"TRUSTED_PROXIES: {entry!r} is an IPv4-mapped IPv6 address; give the IPv4 "
                "form (IPv4-mapped peers are compared as IPv4)"
            )
        networks.append(network)
    return TrustedProxies(networks=tuple(networks), unix_socket=unix_socket)


def parse_address(text: str) -> Address | None:
    """An address from ``REMOTE_ADDR`` or one ``X-Forwarded-For`` entry, or None when it is
    not one. IPv4-mapped IPv6 (``::ffff:192.0.2.1``, a dual-stack socket) becomes IPv4; a
    port (``192.0.2.1:443``, ``[2001:db8::1]:443``) is dropped; a zone (``%eth0``) is refused
    (the database's ``inet`` has none)."""
    text = text.strip()
    if not text or len(text) > 64 or "%" in text:
        return None
    with_port = _WITH_PORT.fullmatch(text)
    if with_port:
        text = with_port.group("bracketed") or with_port.group("v4")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(remote_addr: str, forwarded_for: str, trusted: TrustedProxies) -> str:
    """The client's address as a canonical string, or "" when there is none.

    ``remote_addr``: the connection's peer (``REMOTE_ADDR``); ``forwarded_for``: the
    ``X-Forwarded-For`` header as received (repeated headers joined by commas).
    """
    peer = parse_address(remote_addr)
    if peer is None:
        # A unix socket (no address) is a trusted hop only when TRUSTED_PROXIES says "unix";
        # anything else that is not an address is nobody.
        if remote_addr.strip() or not trusted.unix_socket:
            return ""
    elif not trusted.trusts(peer):
        return str(peer)
    last_trusted = peer
    for entry in reversed(forwarded_for.split(",") if forwarded_for else ()):
        address = parse_address(entry)
        if address is None:
            break  # garbage: the hop that handed it over is as far as anything is known
        if not trusted.trusts(address):
            return str(address)
        last_trusted = address
    return "" if last_trusted is None else str(last_trusted)


def request_id(given: str | None) -> str:
    """The id of a request: the client's ``X-Request-ID`` when it is a plausible id (letters,
    digits and -_. , at most 64, no prefix the site keeps for its own work), else a fresh one
    (uuid hex)."""
    if given and is_plausible_request_id(given) and not is_reserved_request_id(given):
        return given
    return uuid.uuid4().hex


def is_plausible_request_id(value: str) -> bool:
    return REQUEST_ID.fullmatch(value) is not None


def is_reserved_request_id(value: str) -> bool:
    return value.lower().startswith(RESERVED_REQUEST_ID_PREFIXES)
