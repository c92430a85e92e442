"""SQLite store: migrations apply in order and upgrade an older database; rows round-trip."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from transcriber.protocol.stages import Stage
from transcriber.store.db import MIGRATIONS, Store
from transcriber.store.task import Task


async def test_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    await store.close()
    async with aiosqlite.connect(tmp_path / "db.sqlite3") as db:
        async with db.execute("PRAGMA user_version") as cur:
            assert (await cur.fetchone()) == (len(MIGRATIONS),)
        async with db.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone()) == ("wal",)


async def test_version_1_database_upgrades_and_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    async with aiosqlite.connect(path) as db:
        await db.executescript(MIGRATIONS[0][1] + "\nPRAGMA user_version = 1;")
        await db.execute(
            "INSERT INTO tasks VALUES ('abc', 7, 1, 'complete', 100, 100, 'Done', 'a.wav',"
            " 'source.wav', '{\"language\": \"en\"}', 12.5, 400, NULL, '[\"transcribing\"]',"
            " '2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z')"
        )
        await db.commit()
    store = await Store.open(path)
    try:
        task = await store.get("abc")
        assert task is not None
        assert (task.seq, task.stage, task.duration, task.options) == (
            7,
            Stage.COMPLETE,
            12.5,
            {"language": "en"},
        )
        assert (task.language, task.timings, task.interruptions) == (None, {}, 0)
        task = task.changed(language="en", timings={"transcribing": 1.5}, interruptions=1)
        await store.save(task)
        again = await store.get("abc")
        assert again == task
    finally:
        await store.close()


async def test_save_list_delete(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        first = Task(
            id="a" * 16,
            filename="one.wav",
            stored_name="source.wav",
            seq=1,
            created_at="2026-01-01T00:00:00.000Z",
        )
        second = Task(
            id="b" * 16,
            filename="two.wav",
            stored_name="source.wav",
            seq=1,
            created_at="2026-01-02T00:00:00.000Z",
            stage=Stage.QUEUED,
        )
        await store.save(first)
        await store.save(second)
        rows, total = await store.page(10, 0)
        assert [t.id for t in rows] == ["b" * 16, "a" * 16] and total == 2
        assert [t.id for t in await store.unfinished()] == ["a" * 16, "b" * 16]
        await store.delete("a" * 16)
        assert await store.get("a" * 16) is None
        assert (await store.page(10, 0))[1] == 1
    finally:
        await store.close()
