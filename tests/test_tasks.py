"""Task state changes: update bumps seq, saves, then publishes; record saves quietly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from transcriber.jobs.hub import Hub
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.stages import Stage
from transcriber.store.db import Store


async def test_update_saves_then_publishes_and_record_is_quiet(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        hub = Hub()
        tasks = Tasks(store, hub, tmp_path / "files")
        task = await tasks.create("a.wav", {"diarize": True}, ".wav")
        assert (task.seq, hub.latest(task.id)["seq"]) == (1, 1)  # type: ignore[index]
        task = await tasks.update(task.id, stage=Stage.QUEUED, detail="Reading audio")
        saved = await store.get(task.id)
        assert saved is not None and (saved.seq, saved.detail) == (2, "Reading audio")
        assert hub.latest(task.id)["detail"] == "Reading audio"  # type: ignore[index]
        quiet = await tasks.record(
            task.id, done_stages=["transcribing"], timings={"transcribing": 1.5}
        )
        assert quiet.seq == 2 and hub.latest(task.id)["seq"] == 2  # type: ignore[index]
        saved = await store.get(task.id)
        assert saved is not None
        assert (saved.seq, saved.done_stages, saved.timings) == (
            2,
            ["transcribing"],
            {"transcribing": 1.5},
        )
        with pytest.raises(ValueError, match="would change the snapshot"):
            await tasks.record(task.id, detail="sneaky")
    finally:
        await store.close()


async def test_a_read_under_way_when_the_task_is_deleted_finds_it_gone(tmp_path: Path) -> None:
    # A GET that read the row just before a DELETE (or a retention sweep) removed it must not
    # put the task back in memory: it answered 200 with the deleted task from then on.
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        hub = Hub()
        tasks = Tasks(store, hub, tmp_path / "files")
        task = await tasks.create("a.wav", {}, ".wav")
        for stage in (Stage.QUEUED, Stage.TRANSCRIBING, Stage.COMPLETE):
            await tasks.update(task.id, stage=stage)
        tasks = Tasks(store, hub, tmp_path / "files")  # as after a restart: nothing in memory
        reading = asyncio.create_task(tasks.get(task.id))
        await asyncio.sleep(0)  # the read is under way
        await tasks.delete(task.id)
        assert await reading is None
        assert tasks.current(task.id) is None and await tasks.get(task.id) is None
        assert hub.latest(task.id) is None
    finally:
        await store.close()
