"""The transcript as it is decoded: segments stored then published, over the WebSocket
(`segments`, `segments_final`, catch-up with last_segment), over curl (GET .../segments with
after and wait), and a restart that resumes inside the transcribing stage.

The plumbing pipeline hands over one segment per 2 s of audio (at most 5) while it
"transcribes", each a piece of its own; a real model's run is in test_live_real.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from transcriber.protocol.messages import SegmentsPage, ServerMessage

from .conftest import ClientFactory, assert_error, tone_wav, upload, wait_for_stage
from .serverproc import ServerProcess

TEXTS = [f"Plumbing segment {n}." for n in range(1, 6)]


@pytest.fixture(scope="module")
def ten_seconds() -> bytes:
    return tone_wav(10.0)


async def receive(ws: Any, timeout: float = 15.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    ServerMessage.model_validate(data)  # every message is one the protocol describes
    return data


async def text_until_final(ws: Any, task_id: str) -> tuple[list[dict[str, Any]], list[str], int]:
    """(segments received, the stage shown when each came, the final count)."""
    segments: list[dict[str, Any]] = []
    stages: list[str] = []
    stage = ""
    while True:
        message = await receive(ws)
        if message["type"] == "task" and message["task"]["id"] == task_id:
            stage = message["task"]["stage"]
        elif message["type"] == "segments":
            assert message["task_id"] == task_id
            segments += message["segments"]
            stages += [stage] * len(message["segments"])
        elif message["type"] == "segments_final":
            return segments, stages, message["count"]


async def test_segments_arrive_while_it_transcribes_then_the_final_replaces_them(
    make_client: ClientFactory, ten_seconds: bytes
) -> None:
    client = await make_client(plumbing_stage_seconds=2.0)
    task = await (await upload(client, ten_seconds)).json()
    assert task["segments_count"] == 0
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)  # hello
        await ws.send_json({"type": "subscribe", "task_id": task["id"], "last_segment": -1})
        segments, stages, count = await text_until_final(ws, task["id"])
    assert [s["text"] for s in segments] == TEXTS
    assert [s["index"] for s in segments] == [0, 1, 2, 3, 4]
    assert {s["final"] for s in segments} == {False}
    assert {s["speaker"] for s in segments} == {None}
    assert set(stages) == {"transcribing"}  # each came before the stage ended
    assert count == 5
    done = await wait_for_stage(client, task["id"], {"complete"})
    assert done["segments_count"] == 5
    page = await (await client.get(f"/api/tasks/{task['id']}/segments")).json()
    SegmentsPage.model_validate(page)
    assert (page["final"], page["stage"], page["segments_count"]) == (True, "complete", 5)
    assert [s["text"] for s in page["segments"]] == TEXTS
    assert {s["speaker"] for s in page["segments"]} == {"SPEAKER_00"}
    assert page["segments"][0]["words"][0]["word"] == "plumbing"  # aligned words


async def test_a_kept_segments_page_gives_way_to_an_edit(
    make_client: ClientFactory, ten_seconds: bytes
) -> None:
    """Pages are kept encoded by (task, seq, after): an edit (seq + 1) is seen at once."""
    client = await make_client()
    task = await (await upload(client, ten_seconds)).json()
    await wait_for_stage(client, task["id"], {"complete"})
    url = f"/api/tasks/{task['id']}/segments"
    pages = [await (await client.get(url)).json() for _ in range(2)]
    assert pages[0] == pages[1] and pages[0]["segments"][0]["speaker"] == "SPEAKER_00"
    resp = await client.patch(f"/api/tasks/{task['id']}/speakers", json={"SPEAKER_00": "Dana"})
    assert resp.status == 200, await resp.text()
    edited = await (await client.get(url)).json()
    assert edited["seq"] > pages[0]["seq"]
    assert {s["speaker"] for s in edited["segments"]} == {"Dana"}
    after = await (await client.get(url, params={"after": 3})).json()
    assert [s["index"] for s in after["segments"]] == [4]
    assert after["segments"][0]["speaker"] == "Dana"


async def test_a_reconnect_gets_exactly_the_segments_after_its_last(
    make_client: ClientFactory, ten_seconds: bytes
) -> None:
    client = await make_client(plumbing_stage_seconds=3.0)
    task = await (await upload(client, ten_seconds)).json()
    url = f"/api/tasks/{task['id']}/segments"
    # Wait until at least three are stored, as a client would before its connection broke.
    page: dict[str, Any] = {"segments": []}
    while len(page["segments"]) < 3:
        page = await (await client.get(url, params={"wait": 5})).json()
        assert not page["final"]
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_json({"type": "subscribe", "task_id": task["id"], "last_segment": 1})
        segments, _, count = await text_until_final(ws, task["id"])
    assert [s["index"] for s in segments] == [2, 3, 4]  # none twice, none missing
    assert count == 5
    # Once complete, a catch-up is the word that the final transcript is there.
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_json({"type": "subscribe", "task_id": task["id"], "last_segment": 4})
        assert (await receive(ws))["type"] == "task"
        final = await receive(ws)
        assert (final["type"], final["count"]) == ("segments_final", 5)


async def test_old_clients_get_snapshots_only(
    make_client: ClientFactory, ten_seconds: bytes
) -> None:
    client = await make_client(plumbing_stage_seconds=1.0)
    task = await (await upload(client, ten_seconds)).json()
    kinds = []
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_json({"type": "subscribe", "task_id": task["id"]})
        while True:
            message = await receive(ws)
            kinds.append(message["type"])
            if message["type"] == "task" and message["task"]["stage"] == "complete":
                break
    assert set(kinds) == {"task"}
    assert message["task"]["segments_count"] == 5


async def test_long_poll_answers_as_soon_as_a_segment_is_stored(
    make_client: ClientFactory, ten_seconds: bytes
) -> None:
    client = await make_client(plumbing_stage_seconds=4.0)
    task = await (await upload(client, ten_seconds)).json()
    url = f"/api/tasks/{task['id']}/segments"
    loop = asyncio.get_running_loop()
    begun = loop.time()
    page = await (await client.get(url, params={"after": -1, "wait": 30})).json()
    assert loop.time() - begun < 15  # long before the wait ran out
    assert page["segments"] and page["segments"][0]["index"] == 0
    following = await (await client.get(url, params={"after": 0, "wait": 30})).json()
    assert following["segments"][0]["index"] == 1
    await wait_for_stage(client, task["id"], {"complete"})


@pytest.mark.parametrize(
    ("after", "status"), [("-5", 400), ("abc", 400), ("1.5", 400), (str(10**12), 200)]
)
async def test_hostile_after_values(
    make_client: ClientFactory, ten_seconds: bytes, after: str, status: int
) -> None:
    client = await make_client(plumbing_stage_seconds=0.2)
    task = await (await upload(client, ten_seconds)).json()
    await wait_for_stage(client, task["id"], {"complete"})
    resp = await client.get(f"/api/tasks/{task['id']}/segments", params={"after": after})
    if status == 400:
        error = await assert_error(resp, 400, "BAD_REQUEST")
        assert "after" in error["message"]
    else:
        assert resp.status == 200
        assert (await resp.json())["segments"] == []


async def test_cancelled_failed_unknown_and_deleted_tasks(
    make_client: ClientFactory, ten_seconds: bytes
) -> None:
    client = await make_client(plumbing_stage_seconds=3.0)
    task = await (await upload(client, ten_seconds)).json()
    url = f"/api/tasks/{task['id']}/segments"
    page = await (await client.get(url, params={"wait": 10})).json()
    assert page["segments"]
    await client.post(f"/api/tasks/{task['id']}/cancel")
    kept = await (await client.get(url)).json()
    # The cancelled run's text stays readable until the task is deleted, and says so.
    assert kept["stage"] == "cancelled" and not kept["final"]
    assert [s["text"] for s in kept["segments"]] == TEXTS[: len(kept["segments"])]
    # A wait on a finished task answers at once.
    loop = asyncio.get_running_loop()
    begun = loop.time()
    await client.get(url, params={"after": 4, "wait": 30})
    assert loop.time() - begun < 5
    assert (await client.delete(f"/api/tasks/{task['id']}")).status == 204
    await assert_error(await client.get(url), 404, "UNKNOWN_TASK")
    await assert_error(
        await client.get("/api/tasks/0123456789abcdef/segments"), 404, "UNKNOWN_TASK"
    )
    # A task without segments (a bad file: it never ran) has an empty list.
    bad = await upload(client, b"not audio at all", "x.wav")
    bad_id = (await bad.json())["error"]["task_id"]
    empty = await (await client.get(f"/api/tasks/{bad_id}/segments")).json()
    assert (empty["stage"], empty["segments"], empty["segments_count"]) == ("failed", [], 0)


async def test_a_restart_resumes_inside_the_transcribing_stage(tmp_path: Path) -> None:
    env = {"TRANSCRIBER_PLUMBING_STAGE_SECONDS": "6"}
    server = ServerProcess(tmp_path / "data", "--pipeline", "plumbing", env=env).start()
    async with aiohttp.ClientSession() as session:
        resp = await session.post(f"{server.url}/api/tasks?filename=a.wav", data=tone_wav(10.0))
        task_id = (await resp.json())["id"]
        url = f"{server.url}/api/tasks/{task_id}/segments"
        page: dict[str, Any] = {"segments": []}
        while len(page["segments"]) < 2:
            page = await (await session.get(url, params={"wait": 10})).json()
        before = page["segments"][:2]
        server.stop(signal.SIGKILL)
        server.start()
        while True:
            snap = await (await session.get(f"{server.url}/api/tasks/{task_id}")).json()
            if snap["stage"] in ("complete", "failed"):
                break
            await asyncio.sleep(0.2)
        assert (snap["stage"], snap["attempt"]) == ("complete", 2)
        final = await (await session.get(url)).json()
        assert [s["text"] for s in final["segments"]] == TEXTS
        json_url = f"{server.url}/api/tasks/{task_id}/transcript?format=json"
        transcript = await (await session.get(json_url)).json()
    server.stop()
    assert [s["text"] for s in before] == TEXTS[:2]
    # Only the pieces after those stored were transcribed again (the worker says where it
    # resumed; a timing would flake on a busy machine).
    assert re.search(r"resuming after piece [1-4] of 5", server.log.read_text())
    assert transcript["timings"]["transcribing"] < 6


async def test_a_subscriber_that_never_reads_is_dropped_without_growing_memory(
    make_client: ClientFactory, ten_seconds: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transcriber.web import ws as ws_module
    from transcriber.web.keys import HUB

    monkeypatch.setattr(ws_module, "MAX_BACKLOG", 20)
    client = await make_client(plumbing_stage_seconds=30.0)
    task = await (await upload(client, ten_seconds)).json()
    hub = client.server.app[HUB]
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_json({"type": "subscribe", "task_id": task["id"], "last_segment": -1})
        assert (await receive(ws))["type"] == "task"
        outbox = next(iter(hub._subscribers[task["id"]]))
        text = {"index": 0, "start": 0.0, "end": 1.0, "text": "x" * 1000, "speaker": None}
        message = {"type": "segments", "task_id": task["id"], "seq": 1, "segments": [text]}
        for _ in range(500):  # all at once: the sender gets no turn in between
            hub.announce(task["id"], message)
        assert len(outbox.items) <= 20  # held no more than the backlog
        while (msg := await ws.receive(timeout=10)).type == WSMsgType.TEXT:
            pass
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
        assert ws.close_code == 1008
    await client.post(f"/api/tasks/{task['id']}/cancel")
