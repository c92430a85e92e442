"""The OpenAPI 3.1 document of the HTTP API, served at /api/openapi.json.

Generated, not written: the paths from the app's router and each route's description
(web/descriptions.py), the components from the pydantic models those descriptions name:
answers in serialization mode, request bodies in validation mode, query and path parameters
from their models' fields. tests/test_openapi.py keeps it true: every route is described,
every answer matches it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, JsonSchemaValue, models_json_schema

from transcriber import __version__
from transcriber.protocol.errors import ErrorResponse
from transcriber.protocol.messages import ClientMessage, ServerMessage
from transcriber.web.descriptions import ROUTES, Answer, Route, Schema
from transcriber.web.params import PathParams

_REF = "#/components/schemas/{model}"
# The page, its files and this document: named routes that are not part of the API.
NOT_DESCRIBED = frozenset({"index", "static", "openapi"})
_Key = tuple[type[BaseModel], JsonSchemaMode]


class UndescribedRoute(LookupError):
    """A named route without a description in web/descriptions.py, or the reverse."""


def _models(schema: Schema) -> tuple[type[BaseModel], ...]:
    if isinstance(schema, dict):
        return ()
    return schema if isinstance(schema, tuple) else (schema,)


def _keys() -> list[_Key]:
    """Every model the document shows, in a stable order; the WebSocket's messages too."""
    keys: dict[_Key, None] = {(ErrorResponse, "serialization"): None}
    for route in ROUTES.values():
        for schema in route.body.values():
            keys |= dict.fromkeys((model, "validation") for model in _models(schema))
        for answer in route.answers.values():
            for schema in answer.content.values():
                keys |= dict.fromkeys((model, "serialization") for model in _models(schema))
        keys[(route.error_model, "serialization")] = None
    keys |= {(ClientMessage, "validation"): None, (ServerMessage, "serialization"): None}
    return list(keys)


@cache
def _generated() -> tuple[dict[tuple[Any, JsonSchemaMode], JsonSchemaValue], dict[str, Any]]:
    refs, top = models_json_schema(_keys(), ref_template=_REF)
    defs: dict[str, Any] = top["$defs"]
    return dict(refs), defs


def schemas() -> dict[str, Any]:
    return _generated()[1]


def _schema(schema: Schema, mode: JsonSchemaMode) -> JsonSchemaValue:
    if isinstance(schema, dict):
        return schema
    refs = [_generated()[0][(model, mode)] for model in _models(schema)]
    return refs[0] if len(refs) == 1 else {"anyOf": refs}


@cache
def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template=_REF)


def _parameter(model: type[BaseModel], name: str, where: str) -> dict[str, Any]:
    top = _fields(model)
    if name not in top["properties"]:
        raise UndescribedRoute(f"no {where} parameter {name!r} in {model.__name__}")
    schema = _not_null(dict(top["properties"][name]))
    schema.pop("title", None)
    description = schema.pop("description", None)
    required = where == "path" or name in top.get("required", ())
    parameter = {"name": name, "in": where, "required": required, "schema": schema}
    return parameter | ({"description": description} if description else {})


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query value is text: left out, it is absent, never null."""
    options = schema.get("anyOf", [])
    if {"type": "null"} not in options:
        return schema
    rest = [option for option in options if option != {"type": "null"}]
    plain = {k: v for k, v in schema.items() if k != "anyOf" and (k, v) != ("default", None)}
    return plain | (rest[0] if len(rest) == 1 else {"anyOf": rest})


def _parameters(route: Route, path: str) -> list[dict[str, Any]]:
    found = [_parameter(PathParams, name, "path") for name in re.findall(r"{(\w+)}", path)]
    if route.query is not None:
        found += [_parameter(route.query, name, "query") for name in route.query.model_fields]
    found += [
        {"name": name, "in": "header", "description": text, "schema": {"type": "string"}}
        for name, text in route.headers.items()
    ]
    return found


def _answer(answer: Answer) -> dict[str, Any]:
    body: dict[str, Any] = {"description": answer.description}
    if answer.content:
        body["content"] = {
            media: {"schema": _schema(schema, "serialization")}
            for media, schema in answer.content.items()
        }
    if answer.headers:
        body["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    return body


def _operation(name: str, route: Route, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": name, "summary": route.summary}
    if route.description:
        operation["description"] = route.description
    parameters = _parameters(route, path)
    if parameters:
        operation["parameters"] = parameters
    if route.body:
        content = {media: {"schema": _schema(s, "validation")} for media, s in route.body.items()}
        operation["requestBody"] = {"required": route.body_required, "content": content}
    error = _answer(Answer("Error", {"application/json": route.error_model}))
    responses = {str(status): _answer(answer) for status, answer in route.answers.items()}
    operation["responses"] = responses | {str(status): error for status in route.errors}
    return operation


def _described(router: web.UrlDispatcher) -> Iterator[tuple[str, str, str]]:
    """(path, method, route name) of every route the document shows."""
    seen = set()
    for route in router.routes():
        if route.method == "HEAD" or route.name in NOT_DESCRIBED:
            continue
        path = route.resource.canonical if route.resource else "?"
        if route.name not in ROUTES:
            raise UndescribedRoute(
                f"{route.method} {path} (name {route.name!r}) is not in web/descriptions.py"
            )
        seen.add(route.name)
        yield path, route.method.lower(), route.name
    if set(ROUTES) - seen:
        raise UndescribedRoute(f"described, yet not routes: {sorted(set(ROUTES) - seen)}")


def paths(router: web.UrlDispatcher) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path, method, name in _described(router):
        found.setdefault(path, {})[method] = _operation(name, ROUTES[name], path)
    return found


def build(router: web.UrlDispatcher) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "transcriber", "version": __version__},
        "paths": paths(router),
        "components": {"schemas": schemas()},
    }


async def document(request: web.Request) -> web.Response:
    return web.json_response(build(request.app.router))
