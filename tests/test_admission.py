"""Admission (QUEUE_FULL, DISK_FULL), abandoned uploads, and a disk that fills up.

The disk tests mount a small tmpfs as the data folder (root only; skipped elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData

from .conftest import ClientFactory, assert_error, tone_wav, upload, wait_for_stage


async def test_queue_full_answers_429_with_retry_after(
    make_client: ClientFactory, wav_bytes: bytes
) -> None:
    client = await make_client(max_queue=2, plumbing_stage_seconds=5)
    ids = []
    for name in ("running.wav", "first.wav", "second.wav"):
        resp = await upload(client, wav_bytes, name)
        assert resp.status == 201
        ids.append((await resp.json())["id"])
    await wait_for_stage(client, ids[0], {"transcribing"})
    resp = await upload(client, wav_bytes, "third.wav")
    error = await assert_error(resp, 429, "QUEUE_FULL")
    assert resp.headers["Retry-After"] == "60"
    assert error["detail"] == "2 tasks are waiting; the limit is 2"
    resp = await client.post("/api/tasks", json={"filename": "later.wav"})
    await assert_error(resp, 429, "QUEUE_FULL")
    form = FormData()
    form.add_field("file", io.BytesIO(wav_bytes), filename="openai.wav")
    resp = await client.post("/v1/audio/transcriptions", data=form)
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "queue_full"  # OpenAI's error shape
    listing = await (await client.get("/api/tasks")).json()
    assert sorted(t["filename"] for t in listing["tasks"]) == [
        "first.wav",
        "running.wav",
        "second.wav",
    ]
    # Room again once one leaves the queue.
    await client.post(f"/api/tasks/{ids[2]}/cancel")
    assert (await upload(client, wav_bytes, "third.wav")).status == 201


async def test_too_little_free_disk_answers_507_before_storing(
    make_client: ClientFactory, wav_bytes: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(min_free_disk=10**18)
    # The operator hears of it at start, not only from refused uploads.
    [started] = [r for r in caplog.records if "--min-free-disk" in r.getMessage()]
    assert started.levelname == "WARNING"
    assert "less than --min-free-disk (953674316406 MiB)" in started.getMessage()
    error = await assert_error(await upload(client, wav_bytes), 507, "DISK_FULL")
    assert "must stay free" in error["detail"]
    assert (await (await client.get("/api/tasks")).json())["tasks"] == []
    assert list((tmp_path / "data" / "tasks").iterdir()) == []


async def test_abandoned_two_step_upload_fails_upload_incomplete(
    make_client: ClientFactory,
) -> None:
    client = await make_client(upload_timeout=1)
    task = await (await client.post("/api/tasks", json={"filename": "never.wav"})).json()
    failed = await wait_for_stage(client, task["id"], {"failed"})
    assert failed["error"]["code"] == "UPLOAD_INCOMPLETE"
    assert "the upload timeout is 1 s" in failed["error"]["detail"]
    resp = await client.put(f"/api/tasks/{task['id']}/audio", data=tone_wav())
    await assert_error(resp, 409, "CONFLICT")


async def test_stalled_upload_fails_and_its_partial_file_goes(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    client = await make_client(upload_timeout=1)
    data = tone_wav(seconds=10)
    sent = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield data[: len(data) // 2]
        sent.set()
        await asyncio.sleep(3600)  # never sends the rest

    headers = {"Content-Length": str(len(data))}
    request = asyncio.create_task(
        client.post("/api/tasks", params={"filename": "stalled.wav"}, data=body(), headers=headers)
    )
    await asyncio.wait_for(sent.wait(), 10)
    listing: dict[str, Any] = {"tasks": []}
    while not listing["tasks"]:
        listing = await (await client.get("/api/tasks")).json()
    task_id = listing["tasks"][0]["id"]
    failed = await wait_for_stage(client, task_id, {"failed"})
    assert failed["error"]["code"] == "UPLOAD_INCOMPLETE"
    assert not (tmp_path / "data" / "tasks" / task_id / "source.wav").exists()
    request.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await request


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs for the data folder."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write until the disk is full; the filler file is returned for the test to remove."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
    return filler


def stored(db: Path, task_id: str) -> tuple[str, str | None]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stage, error = conn.execute(
            "SELECT stage, error FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()
    return stage, error


async def test_disk_filling_up_fails_only_the_task_that_hit_it(
    make_client: ClientFactory, small_disk: Path
) -> None:
    data_dir = small_disk / "data"
    client = await make_client(data_dir=data_dir, min_free_disk=0, plumbing_stage_seconds=2)
    done = await (await upload(client, tone_wav(seconds=1), "done.wav")).json()
    await wait_for_stage(client, done["id"], {"complete"})
    # An upload bigger than the disk: DISK_FULL, its partial file removed.
    big = tone_wav(seconds=600)  # 19 MB
    resp = await client.post("/api/tasks", params={"filename": "big.wav"}, data=io.BytesIO(big))
    error = await assert_error(resp, 507, "DISK_FULL")
    assert error["detail"].startswith("the disk filled up after")
    assert [p.parent.name for p in data_dir.glob("tasks/*/source.wav")] == [done["id"]]
    # A stage that finds the disk full fails its task; the server keeps answering.
    running = await (await upload(client, tone_wav(seconds=1), "running.wav")).json()
    await wait_for_stage(client, running["id"], {"transcribing"})
    filler = fill(small_disk)
    failed = await wait_for_stage(client, running["id"], {"failed", "complete"})
    assert (failed["error"]["code"], failed["error"]["stage"]) == ("DISK_FULL", "transcribing")
    assert (await client.get("/api/health")).status == 200
    refused = await assert_error(await upload(client, tone_wav(seconds=1)), 507, "DISK_FULL")
    assert refused["code"] == "DISK_FULL"
    # Room again: the failure reaches the database, which stayed whole with every task.
    filler.unlink()
    db = data_dir / "transcriber.sqlite3"
    for _ in range(100):
        if stored(db, running["id"])[0] == "failed":
            break
        await asyncio.sleep(0.1)
    stage, error_json = stored(db, running["id"])
    assert stage == "failed" and error_json is not None and "DISK_FULL" in error_json
    assert stored(db, done["id"])[0] == "complete"
    transcript = await client.get(f"/api/tasks/{done['id']}/transcript?format=txt")
    assert transcript.status == 200
    after = await (await upload(client, tone_wav(seconds=1), "after.wav")).json()
    assert (await wait_for_stage(client, after["id"], {"complete", "failed"}))[
        "stage"
    ] == "complete"


async def test_list_pages_on_with_a_cursor(client: Any) -> None:
    ids = []
    for i in range(5):
        resp = await client.post("/api/tasks", json={"filename": f"f{i}.wav"})
        ids.append((await resp.json())["id"])
    first = await (await client.get("/api/tasks", params={"limit": 2})).json()
    assert [t["id"] for t in first["tasks"]] == [ids[4], ids[3]]
    # A task deleted and one added between pages move neither the cursor nor the next page.
    assert (await client.delete(f"/api/tasks/{ids[3]}")).status == 204
    await client.post("/api/tasks", json={"filename": "new.wav"})
    params = {"limit": 2, "before": first["next"]}
    second = await (await client.get("/api/tasks", params=params)).json()
    assert [t["id"] for t in second["tasks"]] == [ids[2], ids[1]]
    params["before"] = second["next"]
    last = await (await client.get("/api/tasks", params=params)).json()
    assert ([t["id"] for t in last["tasks"]], last["next"]) == ([ids[0]], None)
    bad = await client.get("/api/tasks", params={"before": "yesterday"})
    await assert_error(bad, 400, "BAD_REQUEST")


async def test_uploads_in_progress_are_counted(
    make_client: ClientFactory, wav_bytes: bytes
) -> None:
    client = await make_client(max_uploads=2)
    # JSON-made tasks hold a row and a folder until their bytes come: they count.
    made = [await client.post("/api/tasks", json={"filename": f"{n}.wav"}) for n in "ab"]
    assert [resp.status for resp in made] == [201, 201]
    resp = await client.post("/api/tasks", json={"filename": "c.wav"})
    error = await assert_error(resp, 429, "TOO_MANY_UPLOADS")
    assert resp.headers["Retry-After"] == "60"
    assert error["detail"] == "2 uploads in progress; the limit is 2"
    await assert_error(await upload(client, wav_bytes), 429, "TOO_MANY_UPLOADS")
    resp = await client.post("/v1/audio/transcriptions", data=_openai_form(wav_bytes))
    assert resp.status == 429
    # One finishes its upload: there is room for one more.
    first = (await made[0].json())["id"]
    assert (await client.put(f"/api/tasks/{first}/audio", data=wav_bytes)).status == 201
    assert (await upload(client, wav_bytes)).status == 201


async def test_racing_creates_cannot_pass_the_upload_limit(make_client: ClientFactory) -> None:
    client = await make_client(max_uploads=3)
    answers = await asyncio.gather(
        *(client.post("/api/tasks", json={"filename": f"{n}.wav"}) for n in range(8))
    )
    assert sorted(resp.status for resp in answers) == [201] * 3 + [429] * 5
    listing = await (await client.get("/api/tasks")).json()
    assert listing["total"] == 3


def _openai_form(data: bytes) -> FormData:
    form = FormData()
    form.add_field("model", "whisper-1")
    form.add_field("file", io.BytesIO(data), filename="a.wav", content_type="audio/wav")
    return form
