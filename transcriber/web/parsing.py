"""Reading a request's parts the one way every handler reads them: a bearer token, a JSON
body, a whole number from the query. Each answers 400 BAD_REQUEST in the one error shape."""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from transcriber.protocol.errors import ApiError


def bearer(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None without one."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def same_secret(given: str, expected: str) -> bool:
    """Compared in constant time: how long a comparison takes says nothing of the secret."""
    return hmac.compare_digest(given.encode(), expected.encode())


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except json.JSONDecodeError as exc:
        raise ApiError("BAD_REQUEST", "The body is not valid JSON.", str(exc)) from exc


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """The query parameter as a whole number from `low` to `high`; `default` when absent."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError("BAD_REQUEST", f"{name} must be a whole number from {low} to {high}.")
    return value
