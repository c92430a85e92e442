"""The dask executor on a real LocalCluster of 2 node processes: progress and cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from transcriber.protocol.stages import Stage

from .conftest import ClientFactory, upload
from .daskcluster import dask_overrides, executor_of, node_cluster, until

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
            lambda: [executor.running_on(i) for i in ids]
            if all(executor.running_on(i) for i in ids)
            else None,
            what="both jobs placed",
        )
        seen: dict[str, list[dict[str, Any]]] = {task_id: [] for task_id in ids}
        while not all(s and s[-1]["stage"] == "complete" for s in seen.values()):
            message = await ws.receive_json(timeout=60)
            if message["type"] == "task":
                seen[message["task"]["id"]].append(message["task"])
        await ws.close()
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
