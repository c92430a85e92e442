"""Memory stays bounded: finished tasks leave the cache and the hub unless someone watches.

A deleted task's WebSocket subscribers are told with a `deleted` message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transcriber.jobs.hub import Hub
from transcriber.jobs.tasks import KEEP_FINISHED, Tasks
from transcriber.protocol.messages import ServerMessage
from transcriber.protocol.stages import Stage
from transcriber.store.db import Store

from .conftest import upload, wait_for_stage


class Watcher:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def deliver(self, snapshot: dict[str, Any]) -> None:
        self.got.append(snapshot)

    def push(self, message: dict[str, Any]) -> None:
        self.got.append(message)


async def test_finished_tasks_leave_memory_unless_watched(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        hub = Hub()
        tasks = Tasks(store, hub, tmp_path / "files")
        watched = await tasks.create("watched.wav", {}, ".wav")
        watcher = Watcher()
        hub.subscribe(watched.id, watcher)
        running = await tasks.create("running.wav", {}, ".wav")
        await tasks.update(running.id, stage=Stage.QUEUED)
        await tasks.update(running.id, stage=Stage.TRANSCRIBING)
        ids = [watched.id]
        for index in range(3 * KEEP_FINISHED):
            task = await tasks.create(f"{index}.wav", {}, ".wav")
            ids.append(task.id)
        for task_id in ids:
            await tasks.update(task_id, stage=Stage.QUEUED)
            await tasks.update(task_id, stage=Stage.TRANSCRIBING)
            await tasks.update(task_id, stage=Stage.COMPLETE, progress=100)
        # The newest finished, the watched one and the running one stay; the rest left.
        assert len(tasks._cache) == KEEP_FINISHED + 2
        assert len(hub) == KEEP_FINISHED + 2
        assert tasks.current(watched.id) is not None and hub.latest(watched.id) is not None
        assert tasks.current(running.id) is not None
        assert tasks.current(ids[1]) is None and hub.latest(ids[1]) is None
        # A finished task that left is read back from SQLite as it was.
        again = await tasks.get(ids[1])
        assert again is not None and (again.stage, again.filename) == (Stage.COMPLETE, "0.wav")
        assert hub.latest(ids[1])["seq"] == again.seq  # type: ignore[index]
        # Once unwatched, the watched one leaves at a later round.
        hub.unsubscribe(watched.id, watcher)
        for task_id in ids[2:4]:
            await tasks.get(task_id)
        assert tasks.current(watched.id) is None
        assert len(tasks._cache) == KEEP_FINISHED + 1
    finally:
        await store.close()


async def test_hub_tells_subscribers_of_a_deletion(tmp_path: Path) -> None:
    hub = Hub()
    watcher = Watcher()
    hub.publish({"id": "0123456789abcdef", "seq": 1})
    hub.subscribe("0123456789abcdef", watcher)
    hub.forget("0123456789abcdef")
    hub.forget("0123456789abcdef")
    assert watcher.got == [{"type": "deleted", "task_id": "0123456789abcdef"}]
    assert not hub.is_watched("0123456789abcdef") and len(hub) == 0


async def test_websocket_subscriber_gets_deleted(client: Any, wav_bytes: bytes) -> None:
    task_id = (await (await upload(client, wav_bytes)).json())["id"]
    await wait_for_stage(client, task_id, {"complete"})
    ws = await client.ws_connect("/api/ws")
    assert (await ws.receive_json())["type"] == "hello"
    await ws.send_json({"type": "subscribe", "task_id": task_id})
    assert (await ws.receive_json())["task"]["stage"] == "complete"
    assert (await client.delete(f"/api/tasks/{task_id}")).status == 204
    message = await ws.receive_json(timeout=10)
    assert message == {"type": "deleted", "task_id": task_id}
    ServerMessage.model_validate_json(json.dumps(message))
    await ws.send_json({"type": "subscribe", "task_id": task_id})
    error = (await ws.receive_json(timeout=10))["error"]
    assert error["code"] == "UNKNOWN_TASK"
    await ws.close()
