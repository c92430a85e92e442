"""Where webhooks may go, so that the server cannot be used to reach inside its network.

`--webhook-hosts` lists the hosts a callback_url may name. A host listed by name or address
is the operator's own choice: http and private addresses are allowed for it (a lab's receiver
on its own network). A host matched only by a pattern ('*.example.org', or '*' for any) must
use https and resolve to public addresses only. Every address a name resolves to is checked
again at each attempt (the name may point elsewhere by then: DNS rebinding), and the attempt
connects to a checked address, not to the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from transcriber.protocol.errors import ApiError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A callback URL taken apart: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str  # with the query
    netloc: str  # the Host header
    listed: bool  # named in --webhook-hosts itself, not only matched by a pattern


def _refused(message: str, detail: str) -> ApiError:
    return ApiError("CALLBACK_NOT_ALLOWED", message, detail)


def _host_of(url: str) -> str:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return (host or "").lower().rstrip(".")


def _matches(host: str, entry: str) -> bool | None:
    """True when the entry names the host, False when a pattern covers it, None otherwise."""
    entry = entry.lower().strip("[]").rstrip(".")
    if entry == host:
        return True
    if entry == "*" or (entry.startswith("*.") and host.endswith(entry[1:])):
        return False
    return None


def target(url: str, hosts: Sequence[str]) -> Target:
    """The URL's Target if --webhook-hosts allows it; CALLBACK_NOT_ALLOWED (400) otherwise."""
    if not hosts:
        raise _refused(
            "This server does not send webhooks: callback_url cannot be used.",
            "webhooks are off (no --webhook-hosts)",
        )
    parts = urlsplit(url)
    host = _host_of(url)
    verdicts = [_matches(host, entry) for entry in hosts]
    if True in verdicts:
        listed = True
    elif False in verdicts:
        listed = False
    else:
        raise _refused(
            f"Webhooks may not be sent to {host or 'this address'}.",
            "the host is not in --webhook-hosts",
        )
    if parts.scheme != "https" and not listed:
        raise _refused(
            "callback_url must use https.", f"{parts.scheme} to a host matched by a pattern"
        )
    default = 443 if parts.scheme == "https" else 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, parts.port or default, path, parts.netloc, listed)


def public(address: IPAddress) -> bool:
    """An address anyone on the internet could reach: not loopback, link-local, private,
    shared (CGNAT), reserved, multicast or unspecified; an IPv4 address inside IPv6 is judged
    as itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def addresses(found: Target) -> list[str]:
    """The addresses to connect to: every one the name resolves to, each checked; ValueError
    when none may be used (a pattern-matched name that resolves to any private address)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(found.host, found.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"{found.host} does not resolve: {exc.strerror}") from exc
    resolved = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not found.listed:
        inside = [a for a in resolved if not public(ipaddress.ip_address(a.split("%")[0]))]
        if inside:
            raise ValueError(f"{found.host} resolves to a non-public address ({inside[0]})")
    if not resolved:
        raise ValueError(f"{found.host} resolves to no address")
    return resolved
