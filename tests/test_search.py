"""Search across every transcript: SQLite FTS5 in the store's own database, kept in step with
edits and deletions by triggers; queries escaped so a stray quote is text, not a 500."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from tests.conftest import assert_error, tone_wav, upload, wait_for_stage
from transcriber.jobs.transcripts import revisions as transcripts_module
from transcriber.jobs.transcripts.search import fts_query
from transcriber.store.task import Task
from transcriber.web.keys import CONFIG, RUNNER, TRANSCRIPTS

WAV = tone_wav(10.0)


async def complete(client: Any, filename: str) -> str:
    snap = await (await upload(client, WAV, filename=filename, num_speakers="2")).json()
    await wait_for_stage(client, snap["id"], {"complete"})
    return str(snap["id"])


async def search(client: Any, q: str, **params: str) -> dict[str, Any]:
    resp = await client.get("/api/search", params={"q": q, **params})
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def index_rows(client: Any, word: str) -> list[tuple[str, int]]:
    """What the FTS5 index itself finds, straight from SQLite."""
    with sqlite3.connect(client.server.app[CONFIG].db_path) as db:
        rows = db.execute(
            "SELECT s.task_id, s.idx FROM segments_fts JOIN segments s"
            " ON s.rowid = segments_fts.rowid WHERE segments_fts MATCH ? ORDER BY 1, 2",
            (f'"{word}"',),
        ).fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]


def test_queries_are_escaped_but_phrases_and_prefixes_work() -> None:
    assert fts_query("budget review") == '"budget" "review"'
    assert fts_query('"budget review"') == '"budget review"'
    assert fts_query("budg*") == '"budg"*'
    assert fts_query('"budget rev"*') == '"budget rev"*'
    assert fts_query("NEAR(a OR -b:c") == '"NEAR(a" "OR" "-b:c"'
    assert fts_query('say "hi') == '"say" "hi"'
    assert fts_query('" * ""') == ""


async def test_search_finds_segments_newest_first_with_snippets(client: Any) -> None:
    older = await complete(client, "older.wav")
    newer = await complete(client, "newer.wav")
    body = await search(client, "segment", limit="3")
    hits = body["hits"]
    assert [(h["task_id"], h["segment"]) for h in hits] == [(newer, 0), (newer, 1), (newer, 2)]
    assert hits[1] | {"links": None} == {
        "task_id": newer,
        "filename": "newer.wav",
        "segment": 1,
        "start": 2.0,
        "end": 4.0,
        "speaker": "SPEAKER_01",
        "snippet": "Plumbing <mark>segment</mark> 2.",
        "links": None,
    }
    assert body["next_offset"] == 3
    rest = await search(client, "segment", limit="100", offset="3")
    assert [(h["task_id"], h["segment"]) for h in rest["hits"]] == [
        (newer, 3),
        (newer, 4),
        *[(older, i) for i in range(5)],
    ]
    assert rest["next_offset"] is None
    phrase = await search(client, '"plumbing segment 4"')
    assert [(h["task_id"], h["segment"]) for h in phrase["hits"]] == [(newer, 3), (older, 3)]
    prefix = await search(client, "segm*")
    assert len(prefix["hits"]) == 10
    assert (await search(client, "segment 4 plumbing"))["hits"][0]["segment"] == 3
    assert (await search(client, "segments"))["hits"] == []


async def test_edits_and_deletions_keep_the_index_in_step(client: Any) -> None:
    keep = await complete(client, "keep.wav")
    gone = await complete(client, "gone.wav")
    assert len((await search(client, "plumbing", limit="100"))["hits"]) == 10
    assert index_rows(client, "plumbing") == sorted(
        [(t, i) for t in (keep, gone) for i in range(5)]
    )
    resp = await client.patch(
        f"/api/tasks/{keep}/segments/2", json={"text": "The Zyxcorp <b>budget</b>"}
    )
    assert resp.status == 200
    hits = (await search(client, "zyxcorp"))["hits"]
    assert [(h["task_id"], h["segment"]) for h in hits] == [(keep, 2)]
    assert hits[0]["snippet"] == "The <mark>Zyxcorp</mark> &lt;b&gt;budget&lt;/b&gt;"
    assert (keep, 2) not in index_rows(client, "plumbing")
    assert index_rows(client, "zyxcorp") == [(keep, 2)]
    await client.patch(f"/api/tasks/{keep}/speakers", json={"SPEAKER_00": "Dana"})
    assert (await search(client, "zyxcorp"))["hits"][0]["speaker"] == "Dana"
    assert (await client.delete(f"/api/tasks/{gone}")).status == 204
    assert index_rows(client, "plumbing") == [(keep, i) for i in (0, 1, 3, 4)]
    assert {h["task_id"] for h in (await search(client, "plumbing"))["hits"]} == {keep}
    with sqlite3.connect(client.server.app[CONFIG].db_path) as db:
        left = db.execute("SELECT COUNT(*) FROM revisions WHERE task_id = ?", (gone,)).fetchone()
    assert left == (0,)


async def test_bad_searches_are_400(client: Any) -> None:
    for params in ({"q": ""}, {"q": "   "}, {"q": '" *'}, {"q": "x" * 501}, {}):
        await assert_error(await client.get("/api/search", params=params), 400, "BAD_REQUEST")
    unparsable = await assert_error(
        await client.get("/api/search", params={"q": "bud\x00get"}), 400, "BAD_REQUEST"
    )
    assert unparsable["message"] == "The search could not be understood."
    for params in ({"q": "a", "limit": "0"}, {"q": "a", "limit": "x"}, {"q": "a", "offset": "-1"}):
        resp = await client.get("/api/search", params=params)
        if params.get("limit") == "0":
            assert resp.status == 200  # at least one hit per page
        else:
            await assert_error(resp, 400, "BAD_REQUEST")


async def test_a_completed_run_is_indexed_when_it_completes(client: Any) -> None:
    task_id = await complete(client, "fresh.wav")
    # Nobody reads or searches anything: the index takes the run as it completes (just after
    # the Complete snapshot is published, so allow it a moment).
    for _ in range(50):
        if index_rows(client, "plumbing"):
            break
        await asyncio.sleep(0.1)
    assert index_rows(client, "plumbing") == [(task_id, i) for i in range(5)]


async def test_catch_up_imports_earlier_runs_a_batch_at_a_time(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs that completed under a version that did not index them as they completed.
    async def not_indexed(task: Task) -> None:
        return None

    client.server.app[RUNNER].on_complete = not_indexed
    ids = [await complete(client, f"old{i}.wav") for i in range(5)]
    store = client.server.app[TRANSCRIPTS].store
    pages: list[list[str]] = []

    async def unimported(after: str, limit: int) -> list[str]:
        page: list[str] = await type(store).unimported(store, after, limit)
        pages.append(page)
        return page

    monkeypatch.setattr(store, "unimported", unimported)
    monkeypatch.setattr(transcripts_module, "SYNC_BATCH", 2)
    found = await search(client, "plumbing", limit="100")
    assert {hit["task_id"] for hit in found["hits"]} == set(ids)
    assert len(found["hits"]) == 5 * 5
    assert pages == [sorted(ids)[0:2], sorted(ids)[2:4], sorted(ids)[4:]]
    assert sorted(task_id for task_id, _ in index_rows(client, "plumbing")) == sorted(
        [task_id for task_id in ids for _ in range(5)]
    )
    # All taken in: the next search's catch-up finds nothing to do.
    await search(client, "plumbing")
    assert pages[3:] == [[]]
