"""Each logical write is its own transaction, though every write shares one connection."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from transcriber.protocol.stages import Stage
from transcriber.store.db import Store
from transcriber.store.task import Task
from transcriber.store.transaction import DiskFull
from transcriber.store.transcripts import Revision, TranscriptStore


def rows(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql).fetchall()


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[Store, TranscriptStore]]:
    store = await Store.open(tmp_path / "t.sqlite3")
    await store.save(Task("a", "a.wav", "source.wav", stage=Stage.COMPLETE))
    try:
        yield store, TranscriptStore(store.db)
    finally:
        await store.close()


REVISION = Revision("a", 1, 1, "edit", "2026-12-05T00:00:00.000Z", {"segments": []})
SEGMENTS = [(0, 0.0, 1.0, None, "words")]


async def test_another_commit_does_not_commit_half_of_a_revision(
    stores: tuple[Store, TranscriptStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, transcripts = stores
    reached = asyncio.Event()

    async def segments_fail(sql: str, params: Any) -> None:
        reached.set()  # the revision row is written, not committed
        await asyncio.sleep(0.1)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store.db, "executemany", segments_fail)
    adding = asyncio.create_task(transcripts.add(REVISION, SEGMENTS))
    await reached.wait()
    await store.save(Task("b", "b.wav", "source.wav"))  # another coroutine's write commits
    with pytest.raises(sqlite3.OperationalError):
        await adding
    assert rows(tmp_path / "t.sqlite3", "SELECT task_id FROM revisions") == []
    assert rows(tmp_path / "t.sqlite3", "SELECT id FROM tasks ORDER BY id") == [("a",), ("b",)]


async def test_a_full_disk_rollback_drops_no_other_write(
    stores: tuple[Store, TranscriptStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, transcripts = stores
    reached = asyncio.Event()
    executemany, execute = store.db.executemany, store.db.execute

    async def slow_segments(sql: str, params: Any) -> Any:
        reached.set()
        await asyncio.sleep(0.1)
        return await executemany(sql, params)

    def full_on_tasks(sql: str, params: Any = None) -> Any:
        if sql.startswith("INSERT INTO tasks"):
            raise sqlite3.OperationalError("database or disk is full")
        return execute(sql, params)

    monkeypatch.setattr(store.db, "executemany", slow_segments)
    adding = asyncio.create_task(transcripts.add(REVISION, SEGMENTS))
    await reached.wait()
    monkeypatch.setattr(store.db, "execute", full_on_tasks)
    with pytest.raises(DiskFull):
        await store.save(Task("b", "b.wav", "source.wav"))
    monkeypatch.setattr(store.db, "execute", execute)
    await adding
    db = tmp_path / "t.sqlite3"
    assert rows(db, "SELECT task_id, revision FROM revisions") == [("a", 1)]
    assert rows(db, "SELECT task_id, text FROM segments") == [("a", "words")]
    assert rows(db, "SELECT id FROM tasks") == [("a",)]
