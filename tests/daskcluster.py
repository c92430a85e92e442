"""A real Dask LocalCluster of transcriber nodes (2 worker processes, 1 thread each) and a
server whose dask executor uses it, for the tests of the dask executor."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import dask
from aiohttp import web
from aiohttp.test_utils import TestClient
from distributed import Client, LocalCluster

from transcriber.jobs.engines.dask_executor import DaskExecutor
from transcriber.node.plugin import NodePlugin, node_info
from transcriber.node.settings import NodeSettings
from transcriber.node.tuning import NODE
from transcriber.node.wire import NODE_INFO, RESOURCE
from transcriber.web.keys import RUNNER

TOKEN = "node-token-for-tests"

# Worker processes must be able to start job children; Dask never retries a job itself;
# the nodes' own settings (node/tuning.py), as `transcriber node` sets them.
DASK_CONFIG = {
    **NODE,
    "distributed.worker.daemon": False,
    "distributed.scheduler.allowed-failures": 0,
}


@asynccontextmanager
async def node_cluster(
    tmp_path: Path, workers: int = 2, token: str = TOKEN, slots: int = 1, **settings: Any
) -> AsyncIterator[LocalCluster]:
    """Worker processes with GPU=`slots` each and the node plugin: like `transcriber node`."""
    with dask.config.set(DASK_CONFIG):
        cluster = await LocalCluster(
            n_workers=workers,
            threads_per_worker=slots + 1,  # one per job, one spare (the resource caps the jobs)
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            asynchronous=True,
            resources={RESOURCE: slots},
            startup_information={NODE_INFO: functools.partial(node_info, token, "shared")},
        )
        try:
            await use_settings(cluster, tmp_path, slots=slots, **settings)
            yield cluster
        finally:
            await cluster.close()


async def use_settings(cluster: LocalCluster, tmp_path: Path, **settings: Any) -> None:
    """(Re)install the node plugin on every worker with these settings."""
    async with Client(cluster, asynchronous=True) as client:
        plugin = NodePlugin(NodeSettings(cache_dir=tmp_path / "node-cache", **settings))
        await client.register_plugin(plugin)


def dask_overrides(cluster: LocalCluster, **more: Any) -> dict[str, Any]:
    return {
        "executor": "dask",
        "scheduler": cluster.scheduler_address,
        "insecure": True,
        "node_token": TOKEN,
        "max_jobs": 4,
        **more,
    }


def executor_of(client: TestClient[web.Request, web.Application]) -> DaskExecutor:
    executor = client.app[RUNNER].executor
    assert isinstance(executor, DaskExecutor)
    return executor


async def until(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """Polls `check` until it returns something true; generous for a busy 2-core machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: its parent has not reaped it yet.
    status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return status != "Z"


def placed_pid(executor: DaskExecutor, task_id: str) -> tuple[str, int] | None:
    """The node and job process of the task's running attempt, once the node has said."""
    place = executor.running_on(task_id)
    if place is None or place[1] is None:
        return None
    return place[0], place[1]
