"""One webhook attempt: a POST over a connection this module opens to a checked address.

Written on asyncio streams rather than an HTTP client library: the connection must go to the
address targets.py checked (not to a name resolved again), redirects are never followed (a
3xx is an answer like any other), no proxy from the environment applies, and only the status
line of the answer is read. TLS still verifies the certificate against the URL's host name.
"""

from __future__ import annotations

import asyncio
import ssl
from contextlib import suppress

from transcriber import __version__
from transcriber.jobs.webhooks.targets import Target

# A status line longer than this is not HTTP.
MAX_LINE = 1024


class AttemptFailed(Exception):
    """No HTTP answer: the connection, TLS or the timeout failed, or the answer was garbled."""


def _request(found: Target, headers: dict[str, str], body: bytes) -> bytes:
    lines = [
        f"POST {found.path} HTTP/1.1",
        f"Host: {found.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"User-Agent: transcriber/{__version__}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _connect(
    found: Target, addresses: list[str]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = ssl.create_default_context() if found.scheme == "https" else None
    server_hostname = found.host if context is not None else None
    errors = []
    for address in addresses:
        try:
            return await asyncio.open_connection(
                address, found.port, ssl=context, server_hostname=server_hostname
            )
        except OSError as exc:
            errors.append(f"{address}: {exc.strerror or exc}")
    raise AttemptFailed("cannot connect: " + "; ".join(errors))


async def post(
    found: Target, addresses: list[str], headers: dict[str, str], body: bytes, timeout: float
) -> int:
    """POST the body; the answer's HTTP status, or AttemptFailed."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _connect(found, addresses)
            try:
                writer.write(_request(found, headers, body))
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
                with suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
    except TimeoutError as exc:
        raise AttemptFailed(f"no answer within {timeout:g} s") from exc
    except (OSError, ssl.SSLError) as exc:
        raise AttemptFailed(f"{type(exc).__name__}: {exc}") from exc
    parts = line[:MAX_LINE].decode("latin-1").split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise AttemptFailed(f"not an HTTP answer: {line[:80]!r}")
    return int(parts[1])
