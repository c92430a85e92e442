"""/api/openapi.json stays true: every route is described (a route without a description fails
the build), and schemathesis finds no 5xx and no answer that breaks the schema against the real
server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from transcriber.jobs.transcripts.edits import MAX_NAME, MAX_TEXT
from transcriber.web.descriptions import ROUTES, Route
from transcriber.web.openapi import NOT_DESCRIBED, UndescribedRoute, build, paths
from transcriber.web.server import create_app

from .conftest import plumbing_config
from .serverproc import ServerProcess, running_plumbing_server


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in document["paths"].items() for method in ops}


def test_every_route_is_described(tmp_path: Path) -> None:
    app = create_app(plumbing_config(tmp_path))
    routes = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource and route.method != "HEAD" and route.name not in NOT_DESCRIBED
    }
    document = build(app.router)
    assert _operations(document) == routes
    assert len(routes) == len(ROUTES)
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert sorted(ids) == sorted(ROUTES)
    search = document["paths"]["/api/search"]["get"]
    assert [(p["name"], p["required"]) for p in search["parameters"]] == [
        ("q", True),
        ("limit", False),
        ("offset", False),
    ]
    assert search["parameters"][2]["schema"] == {
        "default": 0,
        "minimum": 0,
        "maximum": 1_000_000,
        "type": "integer",
    }
    components = document["components"]["schemas"]
    assert components["SegmentEdit"]["properties"]["text"]["maxLength"] == MAX_TEXT
    assert components["SpeakerNames"]["additionalProperties"]["anyOf"][0]["maxLength"] == MAX_NAME
    segment = document["paths"]["/api/tasks/{task_id}/segments/{index}"]["patch"]
    assert [(p["name"], p["in"]) for p in segment["parameters"]] == [
        ("task_id", "path"),
        ("index", "path"),
        ("If-Match", "header"),
        ("Prefer", "header"),
    ]
    answer = segment["responses"]["200"]
    assert set(answer["headers"]) == {"ETag", "Preference-Applied", "Vary"}
    assert answer["content"]["application/json"]["schema"] == {
        "anyOf": [
            {"$ref": "#/components/schemas/TranscriptRevision"},
            {"$ref": "#/components/schemas/RevisionChange"},
        ]
    }


async def _new(request: web.Request) -> web.Response:
    return web.json_response({})


@pytest.mark.parametrize("name", ["new_route", None])
def test_a_route_without_a_description_fails_the_build(tmp_path: Path, name: str | None) -> None:
    app = create_app(plumbing_config(tmp_path))
    app.router.add_get("/api/new", _new, name=name)
    with pytest.raises(UndescribedRoute, match=r"GET /api/new \(name (None|'new_route')\)"):
        build(app.router)


def test_a_description_without_its_route_fails_the_build(tmp_path: Path) -> None:
    app = web.Application()
    app.router.add_get("/api/health", _new, name="health")
    with pytest.raises(UndescribedRoute, match=r"described, yet not routes: .*'search'"):
        paths(app.router)


def test_a_path_parameter_must_be_described(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = web.Application()
    for name in ROUTES:
        app.router.add_get(f"/{name}", _new, name=name)
    app.router.add_get("/x/{nobody}", _new, name="x")
    monkeypatch.setitem(ROUTES, "x", Route("x", {}))
    with pytest.raises(UndescribedRoute, match="no path parameter 'nobody' in PathParams"):
        paths(app.router)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("openapi")
    yield from running_plumbing_server(folder, "--max-upload-bytes", "200000", stage_seconds=0.3)


@pytest.fixture(scope="module")
def api_schema(live_server: ServerProcess) -> Any:
    return schemathesis.openapi.from_url(f"{live_server.url}/api/openapi.json")


def test_api_conforms(live_server: ServerProcess, api_schema: Any) -> None:
    # schemathesis's pytest plugin does not run under pytest 9, so drive hypothesis directly.
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: Any) -> None:
            if case.query and "wait" in case.query:
                case.query["wait"] = min(int(case.query["wait"]), 1)  # keep long-polls short
            response = case.call(base_url=live_server.url, timeout=30)
            # Random bytes are schema-valid uploads yet not audio: a 4xx is right for them.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
        checked.append(operation.label)
    assert len(checked) == len(ROUTES)
