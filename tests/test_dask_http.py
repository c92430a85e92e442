"""Nodes without the shared data folder: audio and stage outputs over the internal routes."""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from transcriber.web.keys import CONFIG

from .conftest import ClientFactory
from .daskcluster import (
    TOKEN,
    dask_overrides,
    executor_of,
    node_cluster,
    placed_pid,
    until,
    use_settings,
)
from .test_dask import reach, submit
from .test_dask_failures import parent_of

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_internal_routes_take_the_node_token_and_ranges(
    make_client: ClientFactory, wav_bytes: bytes
) -> None:
    client = await make_client(node_token=TOKEN, pipeline="plumbing")
    task_id = await submit(client, wav_bytes)
    url = f"/internal/nodes/tasks/{task_id}/audio"
    assert (await client.get(url)).status == 401
    assert (await client.get(url, headers={"Authorization": "Bearer wrong"})).status == 401
    whole = await client.get(url, headers=AUTH)
    assert whole.status == 200 and await whole.read() == wav_bytes
    part = await client.get(url, headers=AUTH | {"Range": "bytes=1000-"})
    assert part.status == 206 and await part.read() == wav_bytes[1000:]
    done = await reach(client, task_id, "complete")
    stage = f"/internal/nodes/tasks/{task_id}/stages/aligning"
    got = await client.get(stage, headers=AUTH)
    assert got.status == 200 and "segments" in await got.json()
    # Only the running attempt may write: a finished task's outputs are safe from orphans.
    stale = await client.put(stage, params={"attempt": done["attempt"]}, data=b"{}", headers=AUTH)
    assert stale.status == 409
    path = client.app[CONFIG].files_dir / task_id / "aligning.json"
    assert path.read_bytes() != b"{}"


async def coordinator_url(client: TestClient[web.Request, web.Application]) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_http_nodes_fetch_audio_send_stages_back_and_resume_elsewhere(
    tmp_path: Path, make_client: ClientFactory, wav_bytes: bytes
) -> None:
    async with node_cluster(tmp_path) as cluster:
        client = await make_client(**dask_overrides(cluster, plumbing_stage_seconds=3.0))
        url = await coordinator_url(client)
        await use_settings(cluster, tmp_path, audio="http", coordinator_url=url, node_token=TOKEN)
        executor = executor_of(client)
        await until(lambda: len(executor.nodes.admitted()) == 2, what="both nodes admitted")
        task_id = await submit(client, wav_bytes)
        await reach(client, task_id, "aligning")
        files = client.app[CONFIG].files_dir / task_id
        # Sent back as the stage ended, before the coordinator moved the task on.
        transcribed = (files / "transcribing.json").stat().st_mtime
        _, child = await until(functools.partial(placed_pid, executor, task_id))
        os.kill(parent_of(child), signal.SIGKILL)  # the node is lost mid-alignment
        done = await reach(client, task_id, "complete")
        transcript = await client.get(f"/api/tasks/{task_id}/transcript?format=txt")
        text = await transcript.text()
        await client.close()
    # Resumed on the other node from the uploaded transcript, not transcribed again.
    assert done["attempt"] == 2 and done["error"] is None
    assert (files / "transcribing.json").stat().st_mtime == transcribed
    assert (files / "diarizing.json").is_file() and "Plumbing segment 1." in text
    # The node's copy of the audio was fetched into its own cache, and left once done.
    assert not (tmp_path / "node-cache" / "tasks" / task_id).exists()
