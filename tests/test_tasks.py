"""Task state changes: update bumps seq, saves, then publishes; record saves quietly."""

from __future__ import annotations

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
        task = await tasks.update(task.id, stage=Stage.TRANSCRIBING, detail="Reading audio")
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
