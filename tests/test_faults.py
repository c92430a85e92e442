"""Faults against the real server process: kill -9, SIGTERM, a killed worker. Nothing is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .conftest import tone_wav
from .serverproc import ServerProcess

SLOW = {"TRANSCRIBER_PLUMBING_STAGE_SECONDS": "2"}


async def post_file(session: aiohttp.ClientSession, url: str, name: str = "a.wav") -> str:
    form = aiohttp.FormData()
    form.add_field("file", tone_wav(), filename=name, content_type="audio/wav")
    async with session.post(f"{url}/api/tasks", data=form) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])


async def snapshot(session: aiohttp.ClientSession, url: str, task_id: str) -> dict[str, Any]:
    async with session.get(f"{url}/api/tasks/{task_id}") as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


async def wait_stage(
    session: aiohttp.ClientSession, url: str, task_id: str, stages: set[str], timeout: float = 60
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    since = 0
    while loop.time() < deadline:
        async with session.get(
            f"{url}/api/tasks/{task_id}", params={"wait": 5, "since": since}
        ) as resp:
            snap: dict[str, Any] = await resp.json()
        if snap["stage"] in stages:
            return snap
        since = snap["seq"]
    raise AssertionError(f"{task_id} never reached {stages}: {snap}")


async def half_upload(session: aiohttp.ClientSession, url: str, sent: asyncio.Event) -> None:
    async def body() -> AsyncIterator[bytes]:
        data = tone_wav(seconds=20)
        yield data[: len(data) // 2]
        sent.set()
        await asyncio.sleep(3600)  # never sends the rest

    headers = {"Content-Length": str(len(tone_wav(seconds=20)))}
    async with session.post(
        f"{url}/api/tasks", params={"filename": "cut.wav"}, data=body(), headers=headers
    ):
        pass


def worker_pids(server_pid: int) -> list[int]:
    """The server's worker processes (spawned children running spawn_main)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server_pid and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_kill_9_mid_job_then_restart(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    server = ServerProcess(tmp_path / "data", "--pipeline", "plumbing", env=SLOW).start()
    url = server.url
    running = await post_file(session, url, "running.wav")
    queued = await post_file(session, url, "queued.wav")
    sent = asyncio.Event()
    cut = asyncio.create_task(half_upload(session, url, sent))
    await asyncio.wait_for(sent.wait(), 10)
    before = await wait_stage(session, url, running, {"aligning"})
    assert (await snapshot(session, url, queued))["stage"] == "queued"
    listing = await (await session.get(f"{url}/api/tasks")).json()
    uploading = [t for t in listing["tasks"] if t["filename"] == "cut.wav"]
    assert [t["stage"] for t in uploading] == ["uploading"]
    cut_id = uploading[0]["id"]
    transcript = tmp_path / "data" / "tasks" / running / "transcribing.json"
    first_transcript = transcript.read_bytes()
    seqs = {t: (await snapshot(session, url, t))["seq"] for t in (running, queued, cut_id)}

    server.stop(signal.SIGKILL)
    cut.cancel()
    server.start()

    after = await snapshot(session, url, running)
    assert after["seq"] > seqs[running]
    final = await wait_stage(session, url, running, {"complete", "failed"})
    assert (final["stage"], final["attempt"]) == ("complete", 2)
    assert final["progress"] == 100 and before["attempt"] == 1
    # Resumed after its last finished stage: the transcript was not made again.
    assert transcript.read_bytes() == first_transcript
    done_queued = await wait_stage(session, url, queued, {"complete", "failed"})
    assert (done_queued["stage"], done_queued["attempt"]) == ("complete", 1)
    failed_cut = await snapshot(session, url, cut_id)
    assert failed_cut["stage"] == "failed"
    assert failed_cut["error"]["code"] == "UPLOAD_INCOMPLETE"
    assert failed_cut["seq"] > seqs[cut_id]
    server.stop()


async def test_three_interruptions_fail_interrupted(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = ServerProcess(tmp_path / "data", "--pipeline", "plumbing", env=SLOW).start()
    task_id = await post_file(session, server.url)
    for attempt in (1, 2, 3):
        snap = await wait_stage(session, server.url, task_id, {"transcribing", "aligning"})
        assert snap["attempt"] == attempt
        server.stop(signal.SIGKILL)
        server.start()
    final = await snapshot(session, server.url, task_id)
    assert (final["stage"], final["error"]["code"]) == ("failed", "INTERRUPTED")
    assert "3 restarts" in final["error"]["detail"]
    retried = await (await session.post(f"{server.url}/api/tasks/{task_id}/retry")).json()
    assert retried["stage"] == "queued"
    done = await wait_stage(session, server.url, task_id, {"complete", "failed"})
    assert (done["stage"], done["attempt"]) == ("complete", 4)
    server.stop()


async def test_sigterm_closes_sockets_and_work_resumes(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = ServerProcess(tmp_path / "data", "--pipeline", "plumbing", env=SLOW).start()
    task_id = await post_file(session, server.url)
    ws = await session.ws_connect(f"{server.url}/api/ws")
    assert json.loads((await ws.receive()).data)["type"] == "hello"
    await wait_stage(session, server.url, task_id, {"transcribing"})
    assert server.stop(signal.SIGTERM, timeout=15) == 0
    msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, aiohttp.WSCloseCode.GOING_AWAY)
    server.start()
    final = await wait_stage(session, server.url, task_id, {"complete", "failed"})
    assert (final["stage"], final["attempt"]) == ("complete", 2)
    server.stop()


async def test_killed_worker_fails_task_and_pool_recovers(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = ServerProcess(tmp_path / "data", "--pipeline", "plumbing", env=SLOW).start()
    assert server.proc is not None
    victim = await post_file(session, server.url, "victim.wav")
    after = await post_file(session, server.url, "after.wav")
    await wait_stage(session, server.url, victim, {"transcribing"})
    (pid,) = worker_pids(server.proc.pid)
    os.kill(pid, signal.SIGKILL)
    failed = await wait_stage(session, server.url, victim, {"failed", "complete"})
    assert failed["error"]["code"] == "WORKER_CRASHED"
    assert failed["error"]["message"] == "The worker processing this file stopped unexpectedly."
    async with session.get(f"{server.url}/api/health") as resp:
        assert (await resp.json())["status"] == "ok"
    done = await wait_stage(session, server.url, after, {"complete", "failed"})
    assert done["stage"] == "complete"
    new_pids = worker_pids(server.proc.pid)
    assert len(new_pids) == 1 and new_pids != [pid]
    server.stop()


async def test_cancel_in_every_stage_and_delete_while_running(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = ServerProcess(tmp_path / "data", "--pipeline", "plumbing", env=SLOW).start()
    url = server.url
    # Uploading: a task made by the two-step upload, cancelled before its bytes come.
    async with session.post(f"{url}/api/tasks", json={"filename": "later.wav"}) as resp:
        waiting = (await resp.json())["id"]
    async with session.post(f"{url}/api/tasks/{waiting}/cancel") as resp:
        assert (await resp.json())["error"]["stage"] == "uploading"
    async with session.put(f"{url}/api/tasks/{waiting}/audio", data=tone_wav()) as resp:
        assert resp.status == 409
    for stage in ("transcribing", "aligning", "diarizing"):
        running = await post_file(session, url, f"{stage}.wav")
        queued = await post_file(session, url, f"queued-{stage}.wav")
        await wait_stage(session, url, running, {stage})
        async with session.post(f"{url}/api/tasks/{queued}/cancel") as resp:
            assert (await resp.json())["error"]["stage"] == "queued"
        async with session.post(f"{url}/api/tasks/{running}/cancel") as resp:
            cancelled = await resp.json()
        assert (cancelled["stage"], cancelled["error"]["code"]) == ("cancelled", "CANCELLED")
        assert cancelled["error"]["stage"] == stage
    # The worker stopped at its next step and is free: the next task completes.
    deleted = await post_file(session, url, "deleted.wav")
    after = await post_file(session, url, "after.wav")
    await wait_stage(session, url, deleted, {"transcribing"})
    async with session.delete(f"{url}/api/tasks/{deleted}") as resp:
        assert resp.status == 204
    async with session.get(f"{url}/api/tasks/{deleted}") as resp:
        assert resp.status == 404
    assert not (tmp_path / "data" / "tasks" / deleted).exists()
    done = await wait_stage(session, url, after, {"complete", "failed"})
    assert (done["stage"], done["attempt"]) == ("complete", 1)
    for stage in ("transcribing", "aligning", "diarizing"):
        listing = await (await session.get(f"{url}/api/tasks")).json()
        by_name = {t["filename"]: t for t in listing["tasks"]}
        assert by_name[f"{stage}.wav"]["stage"] == "cancelled"  # no late update revived it
    server.stop()
