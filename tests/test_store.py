"""SQLite store: migrations apply in order and upgrade an older database; rows round-trip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiosqlite
import pytest

from tests.serverproc import ROOT, free_port
from transcriber.config import Config
from transcriber.protocol.stages import Stage
from transcriber.store.db import MIGRATIONS, NewerDatabase, Store
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


async def newer_database(path: Path) -> int:
    """A database as a later version leaves it: one migration more than this one knows."""
    path.parent.mkdir(parents=True)
    newer = len(MIGRATIONS) + 1
    async with aiosqlite.connect(path) as db:
        await db.execute(f"PRAGMA user_version = {newer}")
        await db.commit()
    return newer


async def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "data" / "db.sqlite3"
    newer = await newer_database(path)
    with pytest.raises(NewerDatabase) as refused:
        await Store.open(path)
    assert str(refused.value) == (
        f"the database is at schema version {newer}, written by a newer transcriber;"
        f" this version knows schema versions up to {len(MIGRATIONS)}."
        " Run the newer version, or give this one another --data-dir."
    )
    async with aiosqlite.connect(path) as db:
        async with db.execute("PRAGMA user_version") as cur:
            assert (await cur.fetchone()) == (newer,)
        async with db.execute("SELECT name FROM sqlite_master") as cur:
            assert await cur.fetchall() == []


async def test_the_server_will_not_start_on_a_newer_database(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "data")
    newer = await newer_database(config.db_path)
    args = [
        "--port",
        str(free_port()),
        "--data-dir",
        str(config.data_dir),
        "--pipeline",
        "plumbing",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1] == (
        f"transcriber: {config.db_path}: the database is at schema version {newer}, written by a"
        f" newer transcriber; this version knows schema versions up to {len(MIGRATIONS)}."
        " Run the newer version, or give this one another --data-dir."
    )


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
