"""Revisions stored as what an edit changed: an edit of a long transcript writes a few rows
and a small one, every revision reads back as the full copy it used to be stored as, a full
copy comes every FULL_EVERY revisions, and a database of full copies upgrades and stays
readable.

Real SQLite files, the real store and Transcripts (the path an HTTP edit takes below aiohttp).
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from transcriber.jobs.hub import Hub
from transcriber.jobs.tasks import Tasks
from transcriber.jobs.transcripts.edits import carry_text_edits, edit_segment, labels, rename
from transcriber.jobs.transcripts.revisions import Edit, Transcripts, segment_rows
from transcriber.protocol.errors import ApiError
from transcriber.protocol.stages import Stage, pipeline_stages
from transcriber.store.db import MIGRATIONS, Store
from transcriber.store.task import Task
from transcriber.store.transaction import transaction
from transcriber.store.transcripts import (
    DELTAS_MIGRATION,
    FULL_EVERY,
    TASK_SHIFT,
    Revision,
    TranscriptStore,
)
from transcriber.worker.job import stage_output

LABELS = ("SPEAKER_00", "SPEAKER_01", "SPEAKER_02")
WHEN = "2026-12-01T00:00:00.000Z"


def generated(count: int, rng: random.Random, speakers: int = 3) -> dict[str, Any]:
    """A transcript as the pipeline writes it: timed words, a speaker per segment, turns."""
    segments = []
    for i in range(count):
        words = [f"w{rng.randrange(300)}" for _ in range(12)]
        start = i * 4.0
        label = LABELS[i % speakers]
        segments.append(
            {
                "id": i,
                "start": start,
                "end": start + 4.0,
                "text": " ".join(words) + ".",
                "speaker": label,
                "words": [
                    {
                        "word": " " + word,
                        "start": round(start + k / 3, 3),
                        "end": round(start + (k + 1) / 3, 3),
                        "probability": 0.9,
                        "speaker": label,
                    }
                    for k, word in enumerate(words)
                ],
            }
        )
    turns = [{"start": s["start"], "end": s["end"], "speaker": s["speaker"]} for s in segments]
    return {"language": "en", "duration": count * 4.0, "segments": segments, "turns": turns}


@dataclass
class Setup:
    store: Store
    transcripts: Transcripts
    db_path: Path

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as db:
            return db.execute(sql, args).fetchall()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    store = await Store.open(tmp_path / "t.sqlite3")
    tasks = Tasks(store, Hub(), tmp_path / "tasks")
    try:
        yield Setup(store, Transcripts(tasks, TranscriptStore(store.db)), tmp_path / "t.sqlite3")
    finally:
        await store.close()


async def start(setup: Setup, data: dict[str, Any]) -> None:
    """Task "t", complete, with `data` as revision 0 (as a completed run is imported)."""
    await setup.store.save(Task("t", "t.wav", "source.wav", stage=Stage.COMPLETE, attempt=1))
    await setup.transcripts.store.add(Revision("t", 0, 1, "model", WHEN, data), segment_rows(data))


def matches(setup: Setup, word: str) -> list[int]:
    found = setup.rows(
        "SELECT s.idx FROM segments_fts JOIN segments s ON s.rowid = segments_fts.rowid"
        " WHERE segments_fts MATCH ? ORDER BY s.idx",
        f'"{word}"',
    )
    return [int(r[0]) for r in found]


async def log_writes(db: aiosqlite.Connection) -> None:
    """Log each row written to revisions and segments (temp triggers: this connection only)."""
    async with transaction(db):
        await db.execute("CREATE TEMP TABLE writes (tbl TEXT, op TEXT, number INTEGER)")
        for table, key in (("segments", "idx"), ("revisions", "revision")):
            for op, row in (("INSERT", "new"), ("UPDATE", "new"), ("DELETE", "old")):
                await db.execute(
                    f"CREATE TEMP TRIGGER log_{table}_{op} AFTER {op} ON main.{table} BEGIN"
                    f" INSERT INTO writes VALUES ('{table}', '{op}', {row}.{key}); END"
                )


async def writes(db: aiosqlite.Connection) -> list[tuple[str, str, int]]:
    """The rows logged since the last call."""
    async with transaction(db):
        async with db.execute("SELECT * FROM writes ORDER BY tbl, number") as cur:
            logged = [(str(r[0]), str(r[1]), int(r[2])) for r in await cur.fetchall()]
        await db.execute("DELETE FROM writes")
    return logged


async def test_an_edit_of_a_long_transcript_writes_one_segment_and_a_small_row(
    setup: Setup,
) -> None:
    await start(setup, generated(2700, random.Random(1)))  # 3 hours, 4 s a segment
    db, change = setup.store.db, setup.transcripts.change
    await log_writes(db)
    await change("t", None, partial(edit_segment, index=1234, body={"text": "Zyxcorp budget."}))
    assert await writes(db) == [("revisions", "INSERT", 1), ("segments", "UPDATE", 1234)]
    sizes = setup.rows("SELECT revision, kind, length(data) FROM revisions ORDER BY revision")
    assert [(r[0], r[1]) for r in sizes] == [(0, "full"), (1, "delta")]
    assert sizes[0][2] > 2_000_000 and sizes[1][2] < 1_000
    assert matches(setup, "zyxcorp") == [1234]
    assert setup.rows("SELECT speaker, text FROM segments WHERE idx = 1234") == [
        ("SPEAKER_01", "Zyxcorp budget.")
    ]

    before = db.total_changes
    await change("t", None, partial(rename, body={"SPEAKER_01": "Dana"}))
    changed = db.total_changes - before
    logged = await writes(db)
    assert logged == [("revisions", "INSERT", 2)] + [
        ("segments", "UPDATE", i) for i in range(1, 2700, 3)
    ]
    # Each logged row and its log entry, and the task's row: no entry of the search index
    # changes (the text stays), where a text edit's changes some (test above: 11 in all).
    assert changed == 2 * len(logged) + 1
    assert setup.rows("SELECT kind, length(data) < 200 FROM revisions WHERE revision = 2") == [
        ("delta", 1)
    ]
    named = setup.rows("SELECT idx FROM segments WHERE speaker = 'Dana' ORDER BY idx")
    assert [r[0] for r in named] == list(range(1, 2700, 3))
    assert matches(setup, "zyxcorp") == [1234]

    await change("t", None, partial(edit_segment, index=6, body={"speaker": "Dana"}))
    assert await writes(db) == [("revisions", "INSERT", 3), ("segments", "UPDATE", 6)]
    assert setup.rows("SELECT speaker FROM segments WHERE idx IN (5, 6, 7) ORDER BY idx") == [
        ("SPEAKER_02",),
        ("Dana",),
        ("Dana",),
    ]
    latest = await setup.transcripts.store.latest("t")
    assert latest is not None and latest.revision == 3
    assert latest.data["segments"][6]["speaker"] == "SPEAKER_01"
    assert latest.data["segments"][1234]["text"] == "Zyxcorp budget."
    assert latest.data["speaker_names"] == {"SPEAKER_01": "Dana"}


def random_edit(data: dict[str, Any], rng: random.Random, n: int) -> Edit:
    """One edit as a person makes it: a text, a speaker move, or names (set, cleared, merged)."""
    count, known = len(data["segments"]), labels(data)
    kind = rng.randrange(4)
    if kind == 0:
        body: Any = {"text": f"edit{n} " + " ".join(f"w{rng.randrange(300)}" for _ in range(5))}
        edit = partial(edit_segment, index=rng.randrange(count), body=body)
    elif kind == 1:
        speaker = rng.choice([*known, *data.get("speaker_names", {}).values()])
        edit = partial(edit_segment, index=rng.randrange(count), body={"speaker": speaker})
    elif kind == 2:
        label = rng.choice(known)
        edit = partial(rename, body={label: rng.choice([f"Name {label[-1]}", "Merged", None])})
    else:  # text and speaker at once, or the same text again (a revision that changes nothing)
        index = rng.randrange(count)
        body = {"text": data["segments"][index]["text"], "speaker": rng.choice(known)}
        edit = partial(edit_segment, index=index, body=body)
    return edit


async def rediarized(setup: Setup, attempt: int) -> tuple[Revision, dict[str, Any]]:
    """A re-run of diarization completed: its output taken in as the next revision, and the
    run's output."""
    tasks = setup.transcripts.tasks
    task = await tasks.update("t", attempt=attempt)
    path = stage_output(tasks.work_dir("t"), pipeline_stages(task.options)[-1].value)
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = generated(60, random.Random(attempt), speakers=2)
    path.write_text(json.dumps(fresh))
    new = await setup.transcripts.imported(task)
    assert new is not None and new.source == "rediarize"
    return new, fresh


async def test_every_revision_reads_back_as_its_full_copy(setup: Setup) -> None:
    rng = random.Random(42)
    first = generated(60, rng)
    await start(setup, first)
    # Each revision as the full-copy method stored it: each edit applied to the full copy
    # before it (kept here, not read back), through JSON as the store saves it.
    reference = [json.loads(json.dumps(first))]
    full = [0]  # the revisions that must be stored whole
    for n in range(1, 2 * FULL_EVERY + 40):
        if n in (37, 120):
            new, fresh = await rediarized(setup, attempt=2 if n == 37 else 3)
            expected = carry_text_edits(reference[-1], fresh)
            full.append(n)
        else:
            edit = random_edit(reference[-1], rng, n)
            new = await setup.transcripts.change("t", None, edit)
            expected = edit(reference[-1])
            if n - full[-1] == FULL_EVERY:
                full.append(n)
        assert new.revision == n
        reference.append(json.loads(json.dumps(expected)))
    kinds = setup.rows("SELECT revision FROM revisions WHERE kind = 'full' ORDER BY revision")
    assert [r[0] for r in kinds] == full == [0, 37, 87, 120]
    store = setup.transcripts.store
    for n, expected in enumerate(reference):
        read = await store.get("t", n)
        assert read is not None and read.data == expected, f"revision {n}"
    assert await store.get("t", len(reference)) is None
    latest = await store.latest("t")
    assert latest is not None and latest.data == reference[-1]
    # The search rows and their index are the latest revision's.
    rows = setup.rows('SELECT idx, start, "end", speaker, text FROM segments ORDER BY idx')
    assert rows == segment_rows(reference[-1])
    words = {word for text in (r[4] for r in rows) for word in text.split()}
    for word in sorted(words | {f"edit{n}" for n in range(len(reference))}):
        plain = word.strip(".")
        expected_at = [r[0] for r in rows if plain in r[4].replace(".", "").split()]
        assert matches(setup, plain) == expected_at, plain


async def test_a_database_of_full_copies_upgrades_and_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    applied = [sql for _, sql in MIGRATIONS].index(DELTAS_MIGRATION)
    old = [generated(5, random.Random(n)) for n in range(2)]
    with sqlite3.connect(path) as db:
        for version, (_, sql) in enumerate(MIGRATIONS[:applied], start=1):
            db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
        db.execute(
            "INSERT INTO tasks (id, seq, attempt, stage, progress, stage_progress, detail,"
            " filename, stored_name, options, size, done_stages, created_at, updated_at)"
            " VALUES ('t', 3, 1, 'complete', 100, 100, 'Done', 't.wav', 'source.wav', '{}',"
            " 1, '[]', ?, ?)",
            (WHEN, WHEN),
        )
        for n, data in enumerate(old):
            db.execute(
                "INSERT INTO revisions VALUES ('t', ?, 1, ?, ?, ?)",
                (n, "edit" if n else "model", WHEN, json.dumps(data)),
            )
        db.executemany(
            'INSERT INTO segments (rowid, task_id, idx, start, "end", speaker, text)'
            f" SELECT (rowid << {TASK_SHIFT}) + ?, 't', ?, ?, ?, ?, ? FROM tasks",
            [(1000 - row[0], *row) for row in segment_rows(old[1])],
        )
    store = await Store.open(path)
    try:
        transcripts = Transcripts(
            Tasks(store, Hub(), tmp_path / "tasks"), TranscriptStore(store.db)
        )
        for n, data in enumerate(old):
            read = await transcripts.store.get("t", n)
            assert read is not None and read.data == data
        body = {"text": "Changed after the upgrade."}
        new = await transcripts.change("t", None, partial(edit_segment, index=3, body=body))
        again = await transcripts.store.get("t", 2)
        assert again is not None and again.data == json.loads(json.dumps(new.data))
        assert again.data["segments"][3]["text"] == "Changed after the upgrade."
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        kinds = db.execute("SELECT revision, kind FROM revisions ORDER BY revision").fetchall()
        texts = db.execute("SELECT idx FROM segments WHERE text LIKE 'Changed%'").fetchall()
        found = db.execute(
            "SELECT s.idx FROM segments_fts JOIN segments s ON s.rowid = segments_fts.rowid"
            " WHERE segments_fts MATCH 'upgrade'"
        ).fetchall()
    assert kinds == [(0, "full"), (1, "full"), (2, "delta")]
    assert texts == found == [(3,)]


# -- the latest revision kept in memory ----------------------------------------------------------


async def read_from_disk(setup: Setup, task_id: str = "t") -> Revision | None:
    """The latest revision as the database holds it, past what Transcripts keeps."""
    return await TranscriptStore(setup.store.db).latest(task_id)


async def same_as_disk(setup: Setup) -> Revision:
    """Transcripts' latest revision of "t", checked against the database's."""
    _, latest = await setup.transcripts.latest("t")
    stored = await read_from_disk(setup)
    assert stored is not None and (stored.revision, stored.source) == (
        latest.revision,
        latest.source,
    )
    assert stored.data == json.loads(json.dumps(latest.data))
    return latest


def counting(monkeypatch: pytest.MonkeyPatch, store: TranscriptStore) -> list[str]:
    """The task ids of each read of a latest revision from the database."""
    reads: list[str] = []
    real = store.latest

    async def latest(task_id: str) -> Revision | None:
        reads.append(task_id)
        return await real(task_id)

    monkeypatch.setattr(store, "latest", latest)
    return reads


async def test_an_edit_reads_nothing_back_from_the_database(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    await start(setup, generated(2700, random.Random(3)))
    reads = counting(monkeypatch, setup.transcripts.store)
    change = setup.transcripts.change
    for n in range(5):
        body = {"text": f"Edit number {n}."}
        await change("t", None, partial(edit_segment, index=100 * n, body=body))
    await change("t", None, partial(rename, body={"SPEAKER_02": "Lee"}))
    _, latest = await setup.transcripts.latest("t")
    assert reads == ["t"]  # the first edit's; the others' and the read after them: memory
    assert latest.revision == 6
    await same_as_disk(setup)


async def test_the_kept_revision_follows_every_path_that_changes_the_transcript(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    transcripts, tasks = setup.transcripts, setup.transcripts.tasks
    await start(setup, generated(30, random.Random(4)))
    text = partial(edit_segment, index=2, body={"text": "Kept in memory."})
    await transcripts.change("t", None, text)
    # A re-run of diarization completes: its output is the next revision, text edit carried.
    new, _ = await rediarized(setup, attempt=2)
    latest = await same_as_disk(setup)
    assert (latest.revision, latest.source) == (2, "rediarize") and latest is new
    assert latest.data["segments"][2]["text"] == "Kept in memory."
    await transcripts.change("t", None, partial(rename, body={"SPEAKER_00": "Ana"}))
    assert (await same_as_disk(setup)).data["speaker_names"] == {"SPEAKER_00": "Ana"}

    # A write that fails changes nothing, and one cancelled after it committed is read back.
    real_add_edit = transcripts.store.add_edit

    async def fails(*args: Any) -> bool:
        raise sqlite3.OperationalError("disk I/O error")

    async def committed_then_cancelled(*args: Any) -> bool:
        await real_add_edit(*args)
        raise asyncio.CancelledError

    monkeypatch.setattr(transcripts.store, "add_edit", fails)
    with pytest.raises(sqlite3.OperationalError):
        await transcripts.change("t", None, partial(rename, body={"SPEAKER_00": "Bo"}))
    assert (await same_as_disk(setup)).revision == 3
    monkeypatch.setattr(transcripts.store, "add_edit", committed_then_cancelled)
    with pytest.raises(asyncio.CancelledError):
        await transcripts.change("t", None, partial(rename, body={"SPEAKER_00": "Cy"}))
    latest = await same_as_disk(setup)
    assert (latest.revision, latest.data["speaker_names"]) == (4, {"SPEAKER_00": "Cy"})
    monkeypatch.setattr(transcripts.store, "add_edit", real_add_edit)

    # Deleted (DELETE and retention both go through Tasks.delete): forgotten. A task made
    # again under the same id (ids are never reused; here the test does it) reads its own.
    await tasks.delete("t")
    assert transcripts._latest == {} and transcripts._kept_segments == 0
    with pytest.raises(ApiError):
        await transcripts.latest("t")
    await start(setup, generated(7, random.Random(5)))
    assert len((await same_as_disk(setup)).data["segments"]) == 7


async def test_a_revision_read_or_saved_across_a_deletion_is_not_kept(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    transcripts, tasks = setup.transcripts, setup.transcripts.tasks
    await start(setup, generated(20, random.Random(6)))
    real_latest, real_add_edit = transcripts.store.latest, transcripts.store.add_edit

    async def read_then_deleted(task_id: str) -> Revision | None:
        found = await real_latest(task_id)
        await tasks.delete(task_id)  # after the read, before it is kept
        return found

    monkeypatch.setattr(transcripts.store, "latest", read_then_deleted)
    await transcripts.index(Task("t", "t.wav", "source.wav", stage=Stage.COMPLETE, attempt=1))
    assert transcripts._latest == {}
    monkeypatch.setattr(transcripts.store, "latest", real_latest)

    await start(setup, generated(20, random.Random(7)))
    await transcripts.latest("t")
    assert list(transcripts._latest) == ["t"]

    async def deleted_then_saved(*args: Any) -> bool:
        await tasks.delete("t")  # the edit lost the race: nothing is saved
        return await real_add_edit(*args)

    monkeypatch.setattr(transcripts.store, "add_edit", deleted_then_saved)
    await transcripts.change("t", None, partial(rename, body={"SPEAKER_01": "Gone"}))
    assert transcripts._latest == {}
    monkeypatch.setattr(transcripts.store, "add_edit", real_add_edit)
    await start(setup, generated(9, random.Random(8)))
    assert len((await same_as_disk(setup)).data["segments"]) == 9


async def test_the_kept_revisions_are_bounded_by_tasks_and_segments(setup: Setup) -> None:
    transcripts = Transcripts(setup.transcripts.tasks, setup.transcripts.store, 3, 100)
    sizes = {"a": 40, "b": 40, "c": 30, "d": 10, "e": 150, "f": 5}
    for task_id, count in sizes.items():
        data = generated(count, random.Random(count))
        await setup.store.save(
            Task(task_id, "t.wav", "source.wav", stage=Stage.COMPLETE, attempt=1)
        )
        await transcripts.store.add(
            Revision(task_id, 0, 1, "model", WHEN, data), segment_rows(data)
        )

    async def kept_after(task_id: str) -> list[str]:
        await transcripts.latest(task_id)
        assert transcripts._kept_segments == sum(sizes[k] for k in transcripts._latest)
        return list(transcripts._latest)

    assert await kept_after("a") == ["a"]
    assert await kept_after("b") == ["a", "b"]
    assert await kept_after("c") == ["b", "c"]  # 70 segments; with a, 110
    assert await kept_after("b") == ["c", "b"]  # used again: the newest
    assert await kept_after("d") == ["c", "b", "d"]
    assert await kept_after("f") == ["b", "d", "f"]  # 3 tasks at most
    assert await kept_after("e") == ["e"]  # alone more than 100: the newest stays
    assert await kept_after("f") == ["f"]
