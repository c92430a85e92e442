"""The /api/ws protocol over real WebSocket connections."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer

from transcriber.jobs.hub import Hub
from transcriber.web.keys import HUB, SOCKETS
from transcriber.web.server import create_app

from .conftest import ClientFactory, plumbing_config, upload


async def receive(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def follow(ws: Any, task_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Task snapshots for task_id until a terminal stage."""
    seen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        message = await receive(ws, deadline - loop.time())
        if message["type"] == "task" and message["task"]["id"] == task_id:
            seen.append(message["task"])
            if message["task"]["stage"] in ("complete", "failed", "cancelled"):
                return seen
    raise AssertionError(f"no terminal state for {task_id}: {seen}")


def check_order(snaps: list[dict[str, Any]]) -> None:
    seqs = [s["seq"] for s in snaps]
    assert seqs == sorted(set(seqs)), seqs  # increasing, no duplicates


async def test_hello_subscribe_and_follow_to_complete(client: Any, wav_bytes: bytes) -> None:
    snap = await (await upload(client, wav_bytes)).json()
    async with client.ws_connect("/api/ws") as ws:
        assert await receive(ws) == {"type": "hello", "protocol": 1, "heartbeat_s": 30.0}
        await ws.send_json({"type": "subscribe", "task_id": snap["id"]})
        snaps = await follow(ws, snap["id"])
    check_order(snaps)
    stages = [s["stage"] for s in snaps]
    assert stages[-1] == "complete"
    for stage in ("transcribing", "aligning", "diarizing"):
        assert stage in stages
    progress = [s["progress"] for s in snaps]
    assert progress == sorted(progress) and progress[-1] == 100
    # The detected language shows as soon as transcription has ended.
    assert {s["language"] for s in snaps if s["stage"] in ("aligning", "diarizing")} == {"en"}


async def test_many_clients_one_task_and_one_client_many_tasks(
    client: Any, wav_bytes: bytes
) -> None:
    tasks = [(await (await upload(client, wav_bytes)).json())["id"] for _ in range(2)]
    sockets = [await client.ws_connect("/api/ws") for _ in range(5)]
    for ws in sockets:
        await receive(ws)
        await ws.send_json({"type": "subscribe", "task_id": tasks[0]})
    multi = await client.ws_connect("/api/ws")
    await receive(multi)
    for task_id in tasks:
        await multi.send_json({"type": "subscribe", "task_id": task_id, "last_seq": 0})
    results = await asyncio.gather(*(follow(ws, tasks[0]) for ws in sockets))
    finals = {r[-1]["seq"] for r in results}
    assert len(finals) == 1
    for snaps in results:
        check_order(snaps)
        assert {"transcribing", "aligning", "diarizing", "complete"} <= {s["stage"] for s in snaps}
    per_task: dict[str, list[dict[str, Any]]] = {t: [] for t in tasks}
    while not all(s and s[-1]["stage"] == "complete" for s in per_task.values()):
        message = await receive(multi, 30)
        if message["type"] == "task":
            per_task[message["task"]["id"]].append(message["task"])
    for snaps in per_task.values():
        check_order(snaps)
    for ws in [*sockets, multi]:
        await ws.close()


async def test_catch_up_after_completion_and_with_old_seq(client: Any, wav_bytes: bytes) -> None:
    snap = await (await upload(client, wav_bytes)).json()
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_json({"type": "subscribe", "task_id": snap["id"]})
        final = (await follow(ws, snap["id"]))[-1]
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_json({"type": "subscribe", "task_id": snap["id"], "last_seq": 1})
        assert await receive(ws) == {"type": "task", "task": final}
        # Whatever last_seq says, a subscribe answers with the current snapshot.
        await ws.send_json({"type": "subscribe", "task_id": snap["id"], "last_seq": final["seq"]})
        assert await receive(ws) == {"type": "task", "task": final}


@pytest.mark.parametrize(
    ("frame", "code", "fragment"),
    [
        ("not json", "BAD_MESSAGE", "not JSON"),
        ("[1, 2]", "BAD_MESSAGE", "JSON object"),
        ('{"type": 5}', "BAD_MESSAGE", "string 'type'"),
        ('{"type": "dance"}', "BAD_MESSAGE", "unknown message type"),
        ('{"type": "subscribe"}', "BAD_MESSAGE", "task_id"),
        ('{"type": "subscribe", "task_id": "../../etc"}', "BAD_MESSAGE", "task_id"),
        (
            '{"type": "subscribe", "task_id": "0123456789abcdef", "last_seq": "x"}',
            "BAD_MESSAGE",
            "last_seq",
        ),
        ('{"type": "subscribe", "task_id": "0123456789abcdef"}', "UNKNOWN_TASK", "0123"),
    ],
)
async def test_bad_messages_get_coded_errors_and_socket_stays(
    client: Any, frame: str, code: str, fragment: str
) -> None:
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_str(frame)
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["error"]["code"] == code
        assert fragment in error["error"]["detail"]
        if code == "UNKNOWN_TASK" or 'task_id": "' in frame:
            # Says which subscription failed, for a client that watches many.
            assert error["error"]["task_id"] == json.loads(frame)["task_id"]
        assert error["error"]["message"]
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


async def test_binary_and_oversize_frames(client: Any) -> None:
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_bytes(b"\x00\x01")
        error = await receive(ws)
        assert error["error"]["code"] == "BAD_MESSAGE"
        await ws.send_str(json.dumps({"type": "ping", "pad": "x" * 100_000}))
        msg = await ws.receive(timeout=5)
        assert msg.type == WSMsgType.CLOSE
        assert msg.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    async with client.ws_connect("/api/ws") as other:  # the server carries on
        assert (await receive(other))["type"] == "hello"


async def test_heartbeat_messages(make_client: ClientFactory) -> None:
    client = await make_client(heartbeat=0.3)
    async with client.ws_connect("/api/ws") as ws:
        hello = await receive(ws)
        assert hello["heartbeat_s"] == 0.3
        beats = [await receive(ws, 2) for _ in range(2)]
        assert [b["type"] for b in beats] == ["heartbeat", "heartbeat"]
        assert beats[1]["ts"] > beats[0]["ts"]


async def test_peer_that_stops_answering_is_dropped(
    make_client: ClientFactory, wav_bytes: bytes
) -> None:
    client = await make_client(heartbeat=0.3)
    snap = await (await client.post("/api/tasks", json={"filename": "x.wav"})).json()
    hub: Hub = client.app[HUB]
    # autoping off and never reading: this client does not answer the server's pings.
    ws = await client.ws_connect("/api/ws", autoping=False)
    await ws.send_json({"type": "subscribe", "task_id": snap["id"]})
    for _ in range(50):
        await asyncio.sleep(0.1)
        if hub.subscriber_count(snap["id"]) == 1:
            break
    assert hub.subscriber_count(snap["id"]) == 1
    for _ in range(50):
        await asyncio.sleep(0.1)
        if hub.subscriber_count(snap["id"]) == 0 and not client.app[SOCKETS]:
            break
    assert hub.subscriber_count(snap["id"]) == 0
    assert not client.app[SOCKETS]
    await ws.close()


async def test_cross_origin_refused_and_own_origin_accepted(client: Any) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/ws", headers={"Origin": "http://evil.example"})
    assert refused.value.status == 403
    own = f"http://{client.server.host}:{client.server.port}"
    async with client.ws_connect("/api/ws", headers={"Origin": own}) as ws:
        assert (await receive(ws))["type"] == "hello"


async def test_allowed_origin_list(make_client: ClientFactory) -> None:
    client = await make_client(allowed_origins=("https://app.example",))
    async with client.ws_connect("/api/ws", headers={"Origin": "https://app.example"}) as ws:
        assert (await receive(ws))["type"] == "hello"


async def test_token_required_on_socket_and_routes(make_client: ClientFactory) -> None:
    client = await make_client(token="s3cret")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/ws")
    assert refused.value.status == 401
    # Programs send the bearer header (the page, its session cookie: tests/test_security.py).
    async with client.ws_connect("/api/ws", headers={"Authorization": "Bearer s3cret"}) as ws:
        assert (await receive(ws))["type"] == "hello"
    assert (await client.get("/api/tasks")).status == 401
    ok = await client.get("/api/tasks", headers={"Authorization": "Bearer s3cret"})
    assert ok.status == 200
    assert (await client.get("/api/health")).status == 200


async def test_shutdown_closes_sockets_going_away(tmp_path: Any) -> None:
    server = TestServer(create_app(plumbing_config(tmp_path)))
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url("/api/ws"))
        await receive(ws)
        await server.close()
        msg = await ws.receive(timeout=10)
        assert msg.type == WSMsgType.CLOSE
        assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
        assert msg.extra == "server shutdown"
