"""Nodes without the shared data folder: audio and stage outputs over the internal routes."""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

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
from .test_dask import reach, stage_of, submit
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


@asynccontextmanager
async def cutting_proxy(upstream: str, cut: set[str], sized: bool) -> AsyncIterator[str]:
    """A coordinator URL for nodes that passes everything on to `upstream`, except the audio
    of the tasks in `cut`: half of it is sent, then the connection drops, as on a network that
    fails. `sized`: the answer says its length (as the coordinator's does), else it is chunked.
    """
    async with aiohttp.ClientSession() as session:

        async def forward(request: web.Request) -> web.StreamResponse:
            headers = {k: v for k, v in request.headers.items() if k in ("Authorization", "Range")}
            url, body = upstream + request.path_qs, await request.read()
            async with session.request(request.method, url, headers=headers, data=body) as up:
                answer = await up.read()
                status, kept = (
                    up.status,
                    {k: v for k, v in up.headers.items() if k == "Content-Range"},
                )
            if not any(request.path == f"/internal/nodes/tasks/{t}/audio" for t in cut):
                return web.Response(status=status, body=answer, headers=kept)
            response = web.StreamResponse()
            if sized:
                response.content_length = len(answer)
            else:
                response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(answer[: len(answer) // 2])
            assert request.transport is not None
            request.transport.close()
            return response

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        server = TestServer(app)
        await server.start_server()
        try:
            yield str(server.make_url("")).rstrip("/")
        finally:
            await server.close()


@pytest.mark.parametrize("sized", [True, False], ids=["sized", "chunked"])
async def test_a_cut_download_fails_its_job_alone_and_the_node_runs_on(
    tmp_path: Path,
    make_client: ClientFactory,
    wav_bytes: bytes,
    sized: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with node_cluster(tmp_path, workers=1, slots=2) as cluster:
        client = await make_client(**dask_overrides(cluster, plumbing_stage_seconds=2.0))
        executor = executor_of(client)
        cut: set[str] = set()
        async with cutting_proxy(await coordinator_url(client), cut, sized) as url:
            settings = {"audio": "http", "coordinator_url": url, "node_token": TOKEN}
            await use_settings(cluster, tmp_path, slots=2, **settings)
            await until(lambda: executor.room() == 2, what="the node's 2 slots admitted")
            node = list(executor.nodes.admitted())
            good = await submit(client, wav_bytes)
            await reach(client, good, "transcribing")
            place = await until(functools.partial(placed_pid, executor, good))
            # Created first, its audio sent once the proxy knows to cut it.
            created = await client.post("/api/tasks", json={"filename": "cut.wav"})
            bad = (await created.json())["id"]
            cut.add(bad)
            assert (await client.put(f"/api/tasks/{bad}/audio", data=wav_bytes)).status == 201
            failed = await reach(client, bad, "failed")
            meanwhile, still = await stage_of(client, good), placed_pid(executor, good)
            done = await reach(client, good, "complete")
            admitted = list(executor.nodes.admitted())
            await client.close()
    error = failed["error"]
    assert error["code"] == "INTERNAL" and failed["attempt"] == 1
    # An INTERNAL error's detail is a reference to the server's log line, which says why.
    ref = error["detail"].split()[1]
    why = f"[ref {ref}]: could not fetch the task's files: IncompleteRead"
    assert any(why in record.getMessage() for record in caplog.records), caplog.text
    # The other job on the same node ran on, in the same process, and was never requeued.
    assert meanwhile["stage"] in ("transcribing", "aligning", "diarizing")
    assert still == place and place[0] == node[0]
    assert done["attempt"] == 1 and done["error"] is None
    assert admitted == node
