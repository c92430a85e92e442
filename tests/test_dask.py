"""The dask executor on a real LocalCluster of 2 node processes: progress and cancel."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from distributed import Client

from transcriber.node.wire import RESOURCE, job_key
from transcriber.protocol.stages import Stage
from transcriber.web.keys import CONFIG, RUNNER
from transcriber.worker.job import Job
from transcriber.worker.pipeline.types import Cancelled

from .conftest import ClientFactory, upload
from .daskcluster import alive, dask_overrides, executor_of, node_cluster, placed_pid, until

WORK = ["transcribing", "aligning", "diarizing"]


async def submit(client: TestClient[web.Request, web.Application], wav: bytes) -> str:
    resp = await upload(client, wav)
    assert resp.status == 201, await resp.text()
    task_id: str = (await resp.json())["id"]
    return task_id


async def test_jobs_run_on_both_nodes_with_live_progress(
    tmp_path: Path, make_client: ClientFactory, wav_bytes: bytes
) -> None:
    async with node_cluster(tmp_path) as cluster:
        client = await make_client(**dask_overrides(cluster, plumbing_stage_seconds=1.0))
        executor = executor_of(client)
        await until(lambda: len(executor.nodes.admitted()) == 2, what="both nodes admitted")
        ws = await client.ws_connect("/api/ws")
        ids = [await submit(client, wav_bytes) for _ in range(2)]
        for task_id in ids:
            await ws.send_json({"type": "subscribe", "task_id": task_id})
        places = await until(
            lambda: (
                [executor.running_on(i) for i in ids]
                if all(executor.running_on(i) for i in ids)
                else None
            ),
            what="both jobs placed",
        )
        seen: dict[str, list[dict[str, Any]]] = {task_id: [] for task_id in ids}
        while not all(s and s[-1]["stage"] == "complete" for s in seen.values()):
            message = await ws.receive_json(timeout=60)
            if message["type"] == "task":
                seen[message["task"]["id"]].append(message["task"])
        await ws.close()
        await client.close()
    # One job on each node: the coordinator placed them, not Dask.
    assert len({address for address, _ in places}) == 2
    for snapshots in seen.values():
        stages = [s["stage"] for s in snapshots]
        work = [s for s in dict.fromkeys(stages) if s in WORK]
        assert work == WORK, stages
        progress = [s["progress"] for s in snapshots if s["attempt"] == 1]
        assert progress == sorted(progress) and progress[-1] == 100
        # Progress within each stage arrived from the node, not only the stage changes.
        assert any(0 < s["stage_progress"] < 100 for s in snapshots)
        assert snapshots[-1]["error"] is None and Stage(snapshots[-1]["stage"]) == Stage.COMPLETE


async def stage_of(client: TestClient[web.Request, web.Application], task_id: str) -> Any:
    resp = await client.get(f"/api/tasks/{task_id}")
    return await resp.json()


async def reach(
    client: TestClient[web.Request, web.Application], task_id: str, stage: str, timeout: float = 90
) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            task: dict[str, Any] = await stage_of(client, task_id)
            if task["stage"] == stage:
                return task
            if task["stage"] in ("complete", "failed", "cancelled"):
                raise AssertionError(f"ended {task['stage']}, not {stage}: {task['error']}")
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


async def test_cancel_in_each_stage_stops_the_job_on_its_node(
    tmp_path: Path, make_client: ClientFactory, wav_bytes: bytes
) -> None:
    async with node_cluster(tmp_path) as cluster:
        client = await make_client(**dask_overrides(cluster, plumbing_stage_seconds=4.0))
        executor = executor_of(client)
        runner = client.app[RUNNER]
        files = client.app[CONFIG].files_dir
        await until(lambda: len(executor.nodes.admitted()) == 2, what="both nodes admitted")
        children = set()
        for stage in WORK:
            task_id = await submit(client, wav_bytes)
            await reach(client, task_id, stage)
            _, pid = await until(functools.partial(placed_pid, executor, task_id))
            children.add(pid)
            resp = await client.post(f"/api/tasks/{task_id}/cancel")
            assert resp.status == 200, await resp.text()
            # The job really stopped on its node: the coordinator frees its slot only then.
            await until(lambda: runner.busy == 0)
            task = await stage_of(client, task_id)
            assert task["stage"] == "cancelled"
            assert task["error"]["code"] == "CANCELLED" and task["error"]["stage"] == stage
            # The node heard the cancel: the stage stopped midway, it did not run to its end.
            assert not (files / task_id / f"{stage}.json").exists()
            # Stopped by its flag, well within the grace period: the child was not killed.
            assert pid is not None and alive(pid)
        deleted = await submit(client, wav_bytes)
        await reach(client, deleted, "aligning")
        resp = await client.delete(f"/api/tasks/{deleted}")
        assert resp.status in (200, 204), await resp.text()
        assert (await client.get(f"/api/tasks/{deleted}")).status == 404
        last = await submit(client, wav_bytes)
        done = await reach(client, last, "complete")
        await client.close()
    assert done["error"] is None and done["attempt"] == 1
    # The children kept their models between jobs: at most one per node was ever started.
    assert len(children) <= 2


def test_cluster_settings_are_checked() -> None:
    from transcriber.config import Config

    with pytest.raises(ValueError, match="node_token"):
        Config(executor="dask", insecure=True, scheduler_host="127.0.0.1")
    with pytest.raises(ValueError, match="tls_dir"):
        Config(executor="dask", node_token="t")
    with pytest.raises(ValueError, match="only on loopback"):
        Config(executor="dask", node_token="t", insecure=True)  # binds 0.0.0.0
    with pytest.raises(ValueError, match="only on loopback"):
        Config(executor="dask", node_token="t", insecure=True, scheduler="tcp://10.1.2.3:8786")
    Config(executor="dask", node_token="t", insecure=True, scheduler_host="127.0.0.1")
    Config(executor="dask", node_token="t", tls_dir=Path("certs"))


def test_serve_without_dask_imports_no_dask(tmp_path: Path) -> None:
    code = (
        "import sys; from transcriber.web.server import create_app;"
        "from transcriber.config import Config; create_app(Config());"
        "from transcriber.cli import parse; parse(['serve']);"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


async def test_room_watchers_hear_of_each_node_admitted_and_of_more_slots(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    async with node_cluster(tmp_path, workers=0) as cluster:
        client = await make_client(**dask_overrides(cluster))
        executor = executor_of(client)
        heard: list[int] = []
        executor.watch_room(lambda: heard.append(executor.room()))
        await cluster.scale(2)
        await until(lambda: heard == [1, 2], what="both nodes admitted, one at a time")
        address = next(iter(executor.nodes.admitted()))
        async with Client(cluster, asynchronous=True) as dask:
            # What a worker's own set_resources asks of the scheduler.
            await dask.scheduler.set_resources(worker=address, resources={RESOURCE: 3})
        await until(lambda: heard == [1, 2, 4], what="the node's two more slots")
        room = executor.room()
        await client.close()
    assert room == 4


async def test_stops_leave_nothing_behind_on_the_scheduler(
    tmp_path: Path, make_client: ClientFactory, wav_bytes: bytes
) -> None:
    async with node_cluster(tmp_path, workers=1) as cluster:
        client = await make_client(**dask_overrides(cluster, plumbing_stage_seconds=2.0))
        executor = executor_of(client)
        await until(lambda: executor.room() == 1, what="the node admitted")
        # Cancelled before `run` (as the coordinator does when a cancel lands while it starts
        # the job): never submitted, and `run` stops it as it starts.
        early = Job("never-run", 1, tmp_path / "a.wav", tmp_path, ("aligning",), {}, "plumbing")
        executor.cancel(early)
        with pytest.raises(Cancelled):
            await asyncio.wait_for(executor.run(0, early), 5)
        submitted = [entry[0] for entry in cluster.scheduler.transition_log]
        cancelled = await submit(client, wav_bytes)
        await reach(client, cancelled, "aligning")
        assert (await client.post(f"/api/tasks/{cancelled}/cancel")).status == 200
        await until(lambda: client.app[RUNNER].busy == 0, what="the cancelled job stopped")
        stopped = await stage_of(client, cancelled)
        done = await reach(client, await submit(client, wav_bytes), "complete")
        events = cluster.scheduler.extensions["events"]
        left = dict(events._events), dict(events._waiter_count)
        await client.close()
    assert job_key("never-run", 1) not in submitted
    assert stopped["stage"] == "cancelled" and done["error"] is None
    assert left == ({}, {})
