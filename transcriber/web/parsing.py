"""Reading a request's parts the one way every handler reads them: a bearer token, a JSON
body, the query string through its model. Each answers 400 BAD_REQUEST in the one error shape."""

from __future__ import annotations

import hmac
import json
from typing import Any, TypeVar, cast, get_args

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from transcriber.protocol.errors import ApiError

Query = TypeVar("Query", bound=BaseModel)


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


def model_body(body: object, model: type[Query]) -> Query:
    """A JSON body read through the route's model (web/params.py): 400 naming the field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        raise ApiError("BAD_REQUEST", f"{where}: {first['msg']}.", first["type"]) from exc


async def large_json_body(request: web.Request, limit: int) -> Any:
    """A JSON body past aiohttp's request cap (an import of profiles), read in chunks up to
    `limit` bytes: 413 FILE_TOO_LARGE beyond."""
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError("FILE_TOO_LARGE", detail=f"more than {limit} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError("BAD_REQUEST", "The body is not valid JSON.", str(exc)) from exc


def query(request: web.Request, model: type[Query]) -> Query:
    """The query string read through the route's model (web/params.py), whose Fields hold the
    bounds; the first thing wrong answers in words that name the parameter.

    Without a query string every request gets the same instance of the model's defaults (read
    it, never change it): most GETs carry none, and validating nothing costs a few µs each."""
    if not request.query_string:
        empty = _DEFAULTS.get(model)
        if empty is None:
            empty = _DEFAULTS[model] = _validate(model, {})
        return cast(Query, empty)
    return _validate(model, dict(request.query))


_DEFAULTS: dict[type[BaseModel], BaseModel] = {}


def _validate(model: type[Query], given: dict[str, str]) -> Query:
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0])
        message = _problem(model.model_fields[name], name, first)
        detail = first.get("ctx", {}).get("detail", first["msg"])
        raise ApiError("BAD_REQUEST", message, detail) from exc


def _problem(field: FieldInfo, name: str, error: ErrorDetails) -> str:
    if error["type"] == "bad_query":  # the model's own words
        return error["msg"]
    if error["type"] == "missing":
        return f"{name} is required."
    if int in (field.annotation, *get_args(field.annotation)):
        low, high = _bound(field, "ge"), _bound(field, "le")
        span = "" if high is None else f" from {low} to {high}"
        return f"{name} must be a whole number{span}."
    longest = _bound(field, "max_length")
    if longest is not None:
        return f"{name} must be from {_bound(field, 'min_length') or 0} to {longest} characters."
    return f"{name} is not valid."


def _bound(field: FieldInfo, name: str) -> Any:
    return next((getattr(m, name) for m in field.metadata if hasattr(m, name)), None)
