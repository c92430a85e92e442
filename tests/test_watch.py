"""Watched folders (--watch): real files in real folders, real inotify, the plumbing pipeline.

A file is taken once it stops growing, becomes a task of the owner `watch`, and gets its
outputs beside it (or in --watch-out); a failed one gets NAME.error.txt; files that are not
audio are ignored and logged once; restarts take nothing twice; a removed and recreated
folder is watched again."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import srt

from transcriber.config import Config

from .conftest import ClientFactory, tone_wav
from .speech_truth import SPEECH, truth, wer

SETTLE = 0.3
TEXT = ["Plumbing segment 1."]


def watching(folder: Path, **more: Any) -> dict[str, Any]:
    return {"watch": (folder,), "watch_settle": SETTLE, "plumbing_stage_seconds": 0.1} | more


async def appear(*paths: Path, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all(p.exists() for p in paths):
        if loop.time() > deadline:
            missing = [p.name for p in paths if not p.exists()]
            raise AssertionError(f"never written: {missing}")
        await asyncio.sleep(0.1)


async def all_tasks(client: Any) -> list[dict[str, Any]]:
    listed = await (await client.get("/api/tasks")).json()
    tasks: list[dict[str, Any]] = listed["tasks"]
    return tasks


def rows(data_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "transcriber.sqlite3") as db:
        found = db.execute("SELECT path, state FROM watched_files ORDER BY path").fetchall()
    return [(Path(p).name, s) for p, s in found]


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


async def test_a_dropped_file_gets_its_outputs_beside_it(
    make_client: ClientFactory, inbox: Path, tmp_path: Path
) -> None:
    client = await make_client(**watching(inbox))
    (inbox / "talk.wav").write_bytes(tone_wav(3.0))
    outputs = [inbox / f"talk.{fmt}" for fmt in ("txt", "srt", "json")]
    await appear(*outputs)
    data = json.loads((inbox / "talk.json").read_text())
    texts = [s["text"] for s in data["segments"]]
    assert texts[0] == TEXT[0] and data["duration"] == 3.0
    cues = list(srt.parse((inbox / "talk.srt").read_text()))
    assert [c.content for c in cues] == [f"[SPEAKER_00] {t}" for t in texts]
    assert (inbox / "talk.txt").read_text().splitlines()[0].endswith(TEXT[0])
    (task,) = await all_tasks(client)
    assert (task["filename"], task["stage"], task["owner"]) == ("talk.wav", "complete", "watch")
    assert task["options"]["diarize"] is True
    assert rows(tmp_path / "data") == [("talk.wav", "done")]
    # Nothing else in the folder: no temporary files left, no error file.
    assert sorted(p.name for p in inbox.iterdir()) == sorted(
        ["talk.wav", "talk.txt", "talk.srt", "talk.json"]
    )


async def test_a_growing_file_is_taken_once_it_stops(
    make_client: ClientFactory, inbox: Path
) -> None:
    client = await make_client(**watching(inbox, watch_settle=0.8))
    whole = tone_wav(4.0)
    path = inbox / "slow.wav"
    with path.open("wb") as out:
        for start in range(0, len(whole), len(whole) // 8):
            out.write(whole[start : start + len(whole) // 8])
            out.flush()
            await asyncio.sleep(0.2)
    await appear(inbox / "slow.json")
    (task,) = await all_tasks(client)
    assert (task["stage"], task["duration"], task["size"]) == ("complete", 4.0, len(whole))


async def test_outputs_into_watch_out_with_options_and_formats(
    make_client: ClientFactory, inbox: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    client = await make_client(
        **watching(
            inbox,
            watch_out=out,
            watch_formats=("vtt", "md"),
            watch_options='{"diarize": false, "language": "en"}',
        )
    )
    (inbox / "a.wav").write_bytes(tone_wav(2.0))
    await appear(out / "a.vtt", out / "a.md")
    assert (out / "a.vtt").read_text().startswith("WEBVTT")
    assert TEXT[0] in (out / "a.md").read_text()
    assert sorted(p.name for p in inbox.iterdir()) == ["a.wav"]
    (task,) = await all_tasks(client)
    assert (task["options"]["diarize"], task["options"]["language"]) == (False, "en")


async def test_files_wait_for_room_in_the_queue(
    make_client: ClientFactory, inbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="transcriber.jobs.watch.folder")
    client = await make_client(**watching(inbox, max_queue=1, plumbing_stage_seconds=0.4))
    for name in ("a", "b", "c"):
        (inbox / f"{name}.wav").write_bytes(tone_wav(1.0))
    await appear(*(inbox / f"{name}.json" for name in "abc"))
    waited = [r.getMessage() for r in caplog.records if " waits: " in r.getMessage()]
    assert waited, "with --max-queue 1 and three files at once, one must wait"
    assert len(waited) == len(set(waited))  # each said once, however long it waits
    assert all(
        m.endswith("The server has too many files waiting; try again later.") for m in waited
    )
    assert sorted(t["stage"] for t in await all_tasks(client)) == ["complete"] * 3


async def test_a_failed_file_gets_an_error_file(make_client: ClientFactory, inbox: Path) -> None:
    client = await make_client(**watching(inbox, max_audio_seconds=1.0))
    (inbox / "long.wav").write_bytes(tone_wav(3.0))
    await appear(inbox / "long.error.txt")
    first, detail = (inbox / "long.error.txt").read_text().splitlines()
    assert first == "AUDIO_TOO_LONG: The recording is longer than this server accepts."
    assert detail == "3 s; the limit is 1 s"
    assert not (inbox / "long.txt").exists()
    (task,) = await all_tasks(client)
    assert (task["stage"], task["error"]["code"]) == ("failed", "AUDIO_TOO_LONG")


async def test_files_that_are_not_audio_are_ignored_and_logged_once(
    make_client: ClientFactory, inbox: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="transcriber.jobs.watch.folder")
    client = await make_client(**watching(inbox))
    (inbox / "notes.bin").write_bytes(b"not audio at all" * 250)
    (inbox / "readme.txt").write_text("a format's suffix: never a source")
    (inbox / ".hidden.wav").write_bytes(tone_wav(1.0))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while rows(tmp_path / "data") != [("notes.bin", "ignored")]:
        assert loop.time() < deadline, rows(tmp_path / "data")
        await asyncio.sleep(0.1)
    await client.close()
    again = await make_client(**watching(inbox))
    await asyncio.sleep(SETTLE * 4)
    assert await all_tasks(again) == []
    said = [r.getMessage() for r in caplog.records if "not audio" in r.getMessage()]
    assert said == ["watched file notes.bin is not audio (NO_AUDIO_STREAM); ignored"]


async def test_nothing_is_taken_twice_across_restarts(
    make_client: ClientFactory, inbox: Path, tmp_path: Path
) -> None:
    client = await make_client(**watching(inbox))
    (inbox / "one.wav").write_bytes(tone_wav(2.0))
    await appear(inbox / "one.json")
    written = (inbox / "one.json").stat().st_mtime_ns
    await client.close()
    # Outputs present (a new data folder knows nothing of it): not taken either.
    (inbox / "done.wav").write_bytes(tone_wav(2.0))
    for fmt in ("txt", "srt", "json"):
        (inbox / f"done.{fmt}").write_text("made before")
    again = await make_client(**watching(inbox))
    await asyncio.sleep(SETTLE * 4)
    (task,) = await all_tasks(again)
    assert task["filename"] == "one.wav"
    assert (inbox / "one.json").stat().st_mtime_ns == written
    assert (inbox / "done.txt").read_text() == "made before"
    # A file replaced by a new recording is new.
    (inbox / "one.wav").write_bytes(tone_wav(3.0))
    await asyncio.sleep(SETTLE * 2)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while json.loads((inbox / "one.json").read_text())["duration"] != 3.0:
        assert loop.time() < deadline
        await asyncio.sleep(0.1)
    assert len(await all_tasks(again)) == 2
    assert rows(tmp_path / "data") == [("done.wav", "done"), ("one.wav", "done")]


async def test_a_task_under_way_at_a_restart_gets_its_outputs_after(
    make_client: ClientFactory, inbox: Path
) -> None:
    client = await make_client(**watching(inbox, plumbing_stage_seconds=1.0))
    (inbox / "cut.wav").write_bytes(tone_wav(2.0))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not [t for t in await all_tasks(client) if t["stage"] == "transcribing"]:
        assert loop.time() < deadline
        await asyncio.sleep(0.1)
    await client.close()
    again = await make_client(**watching(inbox))
    await appear(inbox / "cut.txt", inbox / "cut.srt", inbox / "cut.json")
    (task,) = await all_tasks(again)
    assert (task["stage"], task["attempt"]) == ("complete", 2)


async def test_a_copy_cut_by_a_stop_is_taken_again(
    make_client: ClientFactory, inbox: Path, tmp_path: Path
) -> None:
    """A stop during the copy into the data folder leaves the task in uploading; the restart
    fails it UPLOAD_INCOMPLETE, which says nothing about the file: it is taken again."""
    client = await make_client(**watching(inbox))
    (inbox / "cut.wav").write_bytes(tone_wav(2.0))
    await appear(inbox / "cut.json")
    await client.close()
    for fmt in ("txt", "srt", "json"):
        (inbox / f"cut.{fmt}").unlink()
    with sqlite3.connect(
        tmp_path / "data" / "transcriber.sqlite3"
    ) as db:  # as a cut copy leaves it
        db.execute("UPDATE watched_files SET state = 'taken'")
        db.execute("UPDATE tasks SET stage = 'uploading', progress = 0")
    again = await make_client(**watching(inbox))
    await appear(inbox / "cut.txt", inbox / "cut.srt", inbox / "cut.json")
    tasks = await all_tasks(again)
    ends = sorted((t["stage"], (t["error"] or {}).get("code")) for t in tasks)
    assert ends == [("complete", None), ("failed", "UPLOAD_INCOMPLETE")]
    assert not (inbox / "cut.error.txt").exists()
    assert rows(tmp_path / "data") == [("cut.wav", "done")]


async def test_a_removed_and_recreated_folder_is_watched_again(
    make_client: ClientFactory, inbox: Path
) -> None:
    client = await make_client(**watching(inbox))
    (inbox / "first.wav").write_bytes(tone_wav(1.0))
    await appear(inbox / "first.json")
    shutil.rmtree(inbox)
    await asyncio.sleep(0.5)
    inbox.mkdir()
    (inbox / "second.wav").write_bytes(tone_wav(1.0))
    await appear(inbox / "second.json")
    names = sorted(t["filename"] for t in await all_tasks(client))
    assert names == ["first.wav", "second.wav"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: {"watch": (p / "missing",)}, "does not exist"),
        (lambda p: {"watch": (p / "file.wav",)}, "is not a folder"),
        (lambda p: {"watch": (p,), "watch_out": p / "missing"}, "not a writable folder"),
        (lambda p: {"watch": (p,), "watch_formats": ("txt", "pdf")}, "watch_formats"),
        (lambda p: {"watch": (p,), "watch_options": "{diarize: no}"}, "not JSON"),
        (lambda p: {"watch": (p,), "watch_options": '{"speakers": 2}'}, "Unknown option"),
        (lambda p: {"watch": (p,), "watch_options": '{"model": "/srv/m"}'}, "not offered"),
    ],
)
def test_bad_watch_settings_stop_the_start(tmp_path: Path, make: Any, message: str) -> None:
    (tmp_path / "file.wav").write_bytes(b"x")
    with pytest.raises(ValueError, match=message):
        Config(**make(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any folder")
def test_unreadable_or_unwritable_folders_stop_the_start(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        with pytest.raises(ValueError, match="cannot be read"):
            Config(watch=(locked,))
        with pytest.raises(ValueError, match="not a writable folder"):
            Config(watch=(tmp_path,), watch_out=locked)
    finally:
        locked.chmod(0o700)


def test_watch_flags_repeat(tmp_path: Path) -> None:
    from transcriber.cli import parse

    a, b, c = (tmp_path / n for n in "abc")
    for folder in (a, b, c):
        folder.mkdir()
    args = parse(["serve", "--watch", str(a), "--watch", f"{b},{c}", "--watch-formats", "srt"])
    assert args.watch == [str(a), f"{b},{c}"] and args.watch_formats == ["srt"]
    config = Config.from_env({"TRANSCRIBER_WATCH": "/ignored"}, watch=args.watch)
    assert (config.watch, config.watch_formats) == ((a, b, c), ("txt", "srt", "json"))
    config = Config.from_env({"TRANSCRIBER_WATCH": str(b), "TRANSCRIBER_WATCH_FORMATS": "md"})
    assert (config.watch, config.watch_formats) == ((b,), ("md",))


@pytest.mark.slow
async def test_real_model_writes_the_spoken_text(make_client: ClientFactory, inbox: Path) -> None:
    """tiny.en on the 23 s speech fixture, through a watched folder."""
    client = await make_client(
        **watching(
            inbox,
            pipeline="real",
            model="tiny.en",
            device="cpu",
            watch_options='{"diarize": false, "word_timestamps": false}',
        )
    )
    shutil.copy(SPEECH, inbox / "speech.wav")
    await appear(inbox / "speech.json", inbox / "speech.txt", timeout=600)
    data = json.loads((inbox / "speech.json").read_text())
    heard = " ".join(s["text"] for s in data["segments"])
    # tiny.en mishears a few words of it (0.19 here); the rest is word for word.
    assert wer(heard, " ".join(t.word for t in truth())) < 0.25
    assert "over the lazy dog" in heard and "at the old library" in heard
    assert data["model"] == "tiny.en" and data["language"] == "en"
    text = (inbox / "speech.txt").read_text()
    assert "Please call Stella and ask her to bring these things" in text
    (task,) = await all_tasks(client)
    assert (task["owner"], task["stage"]) == ("watch", "complete")
