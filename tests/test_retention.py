"""--retention-days: finished tasks untouched that long go, with their files and index rows;
unfinished ones stay, whatever their age. Real SQLite files, real worker processes."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from transcriber.config import Config
from transcriber.jobs.running.retention import expire_tasks, sweep_interval
from transcriber.protocol.stages import Stage
from transcriber.store.db import Store
from transcriber.store.task import Task, iso
from transcriber.store.transcripts import Revision, TranscriptStore
from transcriber.web.keys import CONFIG

from .conftest import ClientFactory, tone_wav, upload, wait_for_stage


async def finish(client: Any, name: str, stage: str = "complete") -> str:
    task = await (await upload(client, tone_wav(2.0), filename=name)).json()
    if stage == "cancelled":
        await client.post(f"/api/tasks/{task['id']}/cancel")
    await wait_for_stage(client, task["id"], {stage})
    return str(task["id"])


def rows(db_path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, args).fetchall()


async def gone(client: Any, task_id: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await client.get(f"/api/tasks/{task_id}")).status != 404:
        assert loop.time() < deadline, f"task {task_id} was not deleted"
        await asyncio.sleep(0.1)


async def test_store_lists_only_finished_tasks_older_than_the_cutoff(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "t.sqlite3")
    old, new = "2026-01-01T00:00:00.000Z", "2026-06-01T00:00:00.000Z"
    for name, stage, when in [
        ("done-old", Stage.COMPLETE, old),
        ("failed-old", Stage.FAILED, "2025-12-01T00:00:00.000Z"),
        ("cancelled-old", Stage.CANCELLED, old),
        ("running-old", Stage.TRANSCRIBING, old),
        ("queued-old", Stage.QUEUED, old),
        ("uploading-old", Stage.UPLOADING, old),
        ("done-new", Stage.COMPLETE, new),
    ]:
        await store.save(Task(name, f"{name}.wav", "source.wav", stage=stage, updated_at=when))
    cutoff = "2026-03-01T00:00:00.000Z"
    assert await store.finished_before(cutoff, 10) == ["failed-old", "done-old", "cancelled-old"]
    assert await store.finished_before(cutoff, 1) == ["failed-old"]
    deleted: list[str] = []

    async def delete(task_id: str, cutoff: str) -> bool:
        deleted.append(task_id)
        return True

    now = datetime(2026, 3, 31, tzinfo=UTC)
    assert await expire_tasks(store, delete, 30, now) == 3
    assert deleted == ["failed-old", "done-old", "cancelled-old"]
    await store.close()


def test_retention_must_be_positive_and_sweeps_scale_with_it() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="retention_days must be positive"):
            Config(retention_days=bad)
    assert sweep_interval(90) == 3600
    assert sweep_interval(2 / 86400) == 0.5


async def test_old_finished_tasks_go_at_start_with_their_files_and_index(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    data = tmp_path / "kept"
    first = await make_client(data_dir=data)
    done_old = await finish(first, "old.wav")
    cancelled_old = await finish(first, "cancelled.wav", "cancelled")
    done_new = await finish(first, "new.wav")
    await first.close()
    db_path = data / "transcriber.sqlite3"
    forty_days_ago = iso(datetime.now(UTC) - timedelta(days=40))
    with sqlite3.connect(db_path) as db:
        db.executemany(
            "UPDATE tasks SET updated_at = ? WHERE id = ?",
            [(forty_days_ago, done_old), (forty_days_ago, cancelled_old)],
        )
    assert (data / "tasks" / done_old).is_dir()

    second = await make_client(data_dir=data, retention_days=30)
    await gone(second, done_old)
    await gone(second, cancelled_old)
    assert not (data / "tasks" / done_old).exists()
    assert not (data / "tasks" / cancelled_old).exists()
    # A search first makes every completed run a revision (the index), as it would for a user.
    found = await (await second.get("/api/search", params={"q": "plumbing"})).json()
    assert {hit["task_id"] for hit in found["hits"]} == {done_new}
    assert rows(db_path, "SELECT id FROM tasks") == [(done_new,)]
    assert rows(db_path, "SELECT DISTINCT task_id FROM segments") == [(done_new,)]
    assert rows(db_path, "SELECT DISTINCT task_id FROM revisions") == [(done_new,)]
    text = await (await second.get(f"/api/tasks/{done_new}/transcript?format=txt")).text()
    assert "Plumbing segment 1." in text


async def test_the_sweep_deletes_a_task_once_it_has_been_finished_that_long(
    make_client: ClientFactory,
) -> None:
    # Two seconds of retention: the sweep runs every half second while the server runs.
    client = await make_client(retention_days=2 / 86400)
    task = await (await upload(client, tone_wav(2.0), filename="short-lived.wav")).json()
    async with client.ws_connect("/api/ws") as ws:
        await ws.send_json({"type": "subscribe", "task_id": task["id"]})
        await wait_for_stage(client, task["id"], {"complete"})
        loop = asyncio.get_running_loop()
        completed = loop.time()
        await gone(client, task["id"])
        # Not before it has been finished for its retention (less the time the answer took).
        assert loop.time() - completed > 1.5
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] != "deleted":
            seen.append(await asyncio.wait_for(ws.receive_json(), 10))
        assert seen[-1] == {"type": "deleted", "task_id": task["id"]}
    assert not (client.server.app[CONFIG].files_dir / task["id"]).exists()


async def test_an_edit_saved_after_its_task_was_deleted_leaves_no_rows(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "t.sqlite3")
    transcripts = TranscriptStore(store.db)
    await store.save(Task("kept", "kept.wav", "source.wav", stage=Stage.COMPLETE))
    await store.save(Task("gone", "gone.wav", "source.wav", stage=Stage.COMPLETE))
    await store.delete("gone")
    for task_id in ("kept", "gone"):
        revision = Revision(task_id, 1, 1, "edit", "2026-11-30T00:00:00.000Z", {"segments": []})
        await transcripts.add(revision, [(0, 0.0, 1.0, None, "words")])
    assert await transcripts.latest("gone") is None
    kept = await transcripts.latest("kept")
    assert kept is not None and kept.revision == 1
    assert rows(tmp_path / "t.sqlite3", "SELECT task_id FROM revisions") == [("kept",)]
    assert rows(tmp_path / "t.sqlite3", "SELECT task_id, text FROM segments") == [("kept", "words")]
    await store.close()
