"""One webhook attempt: aiohttp's client, held to the addresses targets.py checked.

The connector's resolver answers the URL's host with the checked addresses only, so the
connection never goes to a name looked up a second time (DNS rebinding); redirects are not
followed (a 3xx is an answer like any other); no proxy from the environment applies; TLS
verifies the certificate against the URL's host name. Each attempt opens its own connection and
reads only the answer's status.
"""

from __future__ import annotations

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from transcriber import __version__
from transcriber.jobs.webhooks.targets import Target


class AttemptFailed(Exception):
    """No HTTP answer: the connection, TLS or the timeout failed, or the answer was garbled."""


class _Checked(AbstractResolver):
    """Resolves the callback's host to the checked addresses and every other name to nothing."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        self._host = host
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._host:
            raise OSError(f"{host!r} is not the callback's host")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self._addresses
        ]

    async def close(self) -> None:
        return None


async def post(
    found: Target, addresses: list[str], headers: dict[str, str], body: bytes, timeout: float
) -> int:
    """POST the body; the answer's HTTP status, or AttemptFailed."""
    url = URL(f"{found.scheme}://{found.netloc}{found.path}", encoded=True)
    connector = aiohttp.TCPConnector(
        resolver=_Checked(url.raw_host or "", addresses), use_dns_cache=False, force_close=True
    )
    sent = {
        "Content-Type": "application/json",
        "User-Agent": f"transcriber/{__version__}",
        **headers,
    }
    session = aiohttp.ClientSession(
        connector=connector, trust_env=False, timeout=aiohttp.ClientTimeout(total=timeout)
    )
    try:
        async with session, session.post(url, data=body, headers=sent, allow_redirects=False) as r:
            return r.status
    except TimeoutError as exc:
        raise AttemptFailed(f"no answer within {timeout:g} s") from exc
    except aiohttp.ClientConnectorError as exc:
        raise AttemptFailed(f"cannot connect: {exc.os_error}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise AttemptFailed(f"{type(exc).__name__}: {exc}") from exc
