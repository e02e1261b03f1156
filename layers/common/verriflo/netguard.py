"""Outbound-request guard (SSRF): which URLs we may call, and the checked addresses to connect to.

A webhook URL is checked when it is saved and again at every send: its host is resolved, every
address must be public (not loopback, private, link-local, CGNAT, multicast, reserved or
unspecified; IPv4-mapped IPv6 is unwrapped first), and the request then connects to one of those
checked addresses, so a DNS answer that changes between check and use (rebinding) cannot redirect
it. An operator setting (`WEBHOOK_ALLOW_PRIVATE_TARGETS`, local testing) lifts the address rule and
allows plain http.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from verriflo.errors import ValidationFailed

MAX_URL_LENGTH = 2048


class BlockedTarget(ValidationFailed):
    """A URL we refuse to call."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL checked for sending: where to connect, and what to call it (Host header, TLS SNI)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    parts: SplitResult

    def url_for(self, address: str) -> str:
        """The URL with the host replaced by one checked address (the Host header keeps the name)."""
        literal = f"[{address}]" if ":" in address else address
        return self.parts._replace(netloc=f"{literal}:{self.port}").geturl()

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def _unwrap(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public(address: str) -> bool:
    """Whether an address is on the public internet."""
    ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def parse(url: str, *, allow_private: bool) -> SplitResult:
    """Check the URL's form (scheme, host, no credentials) without resolving it."""
    if len(url) > MAX_URL_LENGTH:
        raise BlockedTarget(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise BlockedTarget("The URL is not valid.") from exc
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise BlockedTarget("The URL must use https.")
    if not parts.hostname:
        raise BlockedTarget("The URL has no host.")
    if parts.username or parts.password:
        raise BlockedTarget("The URL must not contain credentials.")
    if parts.fragment:
        raise BlockedTarget("The URL must not contain a fragment.")
    return parts


def resolve(url: str, *, allow_private: bool) -> Target:
    """Check the URL and resolve its host; raise BlockedTarget unless every address may be called."""
    parts = parse(url, allow_private=allow_private)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedTarget(f"The host '{host}' cannot be resolved.") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise BlockedTarget(f"The host '{host}' cannot be resolved.")
    if not allow_private:
        # Every address, not just the first: a host with one private answer is refused outright.
        blocked = [a for a in addresses if not is_public(a)]
        if blocked:
            raise BlockedTarget(f"The host '{host}' resolves to a private, loopback or link-local address.")
    return Target(url=url, scheme=parts.scheme, host=host, port=port, addresses=addresses, parts=parts)
