"""The queue module and queue positions: computed when served, never written per dequeue."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from transcriber.jobs.running.queue import JobQueue, ordinal_in_queue
from transcriber.web.server import create_app

from .conftest import ClientFactory, plumbing_config, upload, wait_for_stage


async def test_positions_follow_puts_removes_and_gets() -> None:
    q = JobQueue()
    assert [await q.put(t) for t in "abcde"] == [1, 2, 3, 4, 5]
    assert await q.put("c") == 3  # once only
    assert q.remove("b") and not q.remove("b")
    assert [q.position(t) for t in "abcde"] == [1, None, 2, 3, 4]
    assert await q.get() == "a"
    assert (q.position("e"), len(q), q.waiting()) == (3, 3, ["c", "d", "e"])
    assert "a" not in q and "d" in q


async def test_get_waits_for_a_put() -> None:
    q = JobQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.05)
    assert not getter.done()
    await q.put("x")
    assert await asyncio.wait_for(getter, 2) == "x"


def test_ordinals() -> None:
    assert [ordinal_in_queue(n) for n in (1, 2, 3, 4, 11, 12, 21, 22, 23, 101, 111)] == [
        "Next in queue",
        "2nd in queue",
        "3rd in queue",
        "4th in queue",
        "11th in queue",
        "12th in queue",
        "21st in queue",
        "22nd in queue",
        "23rd in queue",
        "101st in queue",
        "111th in queue",
    ]


def _row(db: Path, task_id: str) -> tuple[int, str]:
    with sqlite3.connect(db) as conn:
        seq, detail = conn.execute(
            "SELECT seq, detail FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()
    return int(seq), str(detail)


async def test_position_is_served_fresh_without_a_write(
    make_client: ClientFactory, wav_bytes: bytes, tmp_path: Path
) -> None:
    client = await make_client(plumbing_stage_seconds=0.5)
    ids = [(await (await upload(client, wav_bytes)).json())["id"] for _ in range(4)]
    db = tmp_path / "data" / "transcriber.sqlite3"
    last = ids[-1]
    stored_seq, stored_detail = _row(db, last)
    assert stored_detail in ("3rd in queue", "4th in queue")
    await wait_for_stage(client, ids[0], {"complete"})
    await wait_for_stage(client, ids[1], {"transcribing", "aligning", "diarizing"})
    served = await (await client.get(f"/api/tasks/{last}")).json()
    assert (served["stage"], served["detail"]) == ("queued", "2nd in queue")
    assert served["seq"] > stored_seq
    # Shown, not written: the row still holds what enqueue wrote.
    assert _row(db, last) == (stored_seq, stored_detail)
    await wait_for_stage(client, last, {"complete"}, timeout=60)


async def test_no_seq_is_published_twice_across_a_restart(
    tmp_path: Path, wav_bytes: bytes, aiohttp_client: Any
) -> None:
    config = plumbing_config(tmp_path, plumbing_stage_seconds=5.0)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config))
    ids = [(await (await upload(client, wav_bytes)).json())["id"] for _ in range(3)]
    await wait_for_stage(client, ids[0], {"transcribing"})
    seen = (await (await client.get(f"/api/tasks/{ids[2]}")).json())["seq"]
    await client.close()

    server = TestServer(create_app(config))
    again: TestClient[Any, Any] = TestClient(server)
    await again.start_server()
    try:
        snap = await (await again.get(f"/api/tasks/{ids[2]}")).json()
        assert snap["stage"] == "queued"
        assert snap["seq"] > seen
    finally:
        await again.close()


async def test_a_watched_task_sees_its_position_move(
    make_client: ClientFactory, wav_bytes: bytes
) -> None:
    client = await make_client(plumbing_stage_seconds=0.4)
    ids = [(await (await upload(client, wav_bytes)).json())["id"] for _ in range(3)]
    details: list[str] = []
    async with client.ws_connect("/api/ws") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        await ws.send_json({"type": "subscribe", "task_id": ids[2]})
        while True:
            message = await asyncio.wait_for(ws.receive_json(), 30)
            if message["type"] != "task":
                continue
            task = message["task"]
            if task["stage"] != "queued":
                break
            details.append(task["detail"])
    # Pushed after each dequeue, without anyone asking: 2nd, then next.
    assert details[-2:] == ["2nd in queue", "Next in queue"], details
