"""/api/openapi.json stays true: every route is documented, and schemathesis finds no 5xx and no
answer that breaks the schema against the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from transcriber.web.openapi import PATHS
from transcriber.web.server import create_app

from .conftest import plumbing_config
from .serverproc import ServerProcess, running_plumbing_server

UNDOCUMENTED = {"/", "/api/ws", "/api/openapi.json"}


def test_every_route_is_documented(tmp_path: Path) -> None:
    app = create_app(plumbing_config(tmp_path))
    routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path is None or route.method == "HEAD" or path in UNDOCUMENTED:
            continue
        routes.add((path, route.method.lower()))
    documented = {(p, m) for p, ops in PATHS.items() for m in ops}
    assert routes == documented


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
    assert len(checked) == sum(len(ops) for ops in PATHS.values())
