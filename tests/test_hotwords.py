"""Vocabulary: hotwords and initial_prompt (faster-whisper's own) on the API and CLI, and the
server-wide default list (--hotwords-file), checked on a real model with a fixture made for it:
espeak-ng saying "Please send the report to Zbigniew Kowalczyk before Friday." (tests/data/
hotword_en.wav, 16 kHz mono), a name tiny.en does not know."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faster_whisper import WhisperModel

from tests.conftest import DATA, assert_error, tone_wav, upload, wait_for_stage
from tests.serverproc import running_plumbing_server
from transcriber.config import Config, read_hotwords
from transcriber.jobs.running import hotwords
from transcriber.jobs.running.hotwords import HotwordsFile
from transcriber.web.keys import RUNNER
from transcriber.worker.job import Job, JobResult
from transcriber.worker.pipeline.audio import load_audio
from transcriber.worker.pipeline.models import load_model
from transcriber.worker.pipeline.transcribe import transcribe

FIXTURE = DATA / "hotword_en.wav"


def text_of(model: WhisperModel, options: dict[str, Any]) -> str:
    result = transcribe(model, load_audio(FIXTURE), options, lambda p, d: None, "tiny.en")
    return " ".join(s.text for s in result.segments)


@pytest.mark.slow
def test_a_hotword_changes_a_real_model_transcript(tmp_path: Path) -> None:
    tiny = load_model("tiny.en", "cpu", tmp_path / "models")
    without = text_of(tiny, {})
    assert "Kowalczyk" not in without and without.startswith("Please send the report to")
    with_hotwords = text_of(tiny, {"hotwords": "Zbigniew Kowalczyk"})
    assert with_hotwords.startswith("Please send the report to Zbigniew Kowalczyk before Friday")
    prompted = text_of(tiny, {"initial_prompt": "A note about Zbigniew Kowalczyk."})
    assert "Zbigniew Kowalczyk" in prompted


@pytest.mark.slow
async def test_hotwords_file_is_every_tasks_default(make_client: Any, tmp_path: Path) -> None:
    words = tmp_path / "hotwords.txt"
    words.write_text("# names we meet\nZbigniew\n\nKowalczyk\n")
    client = await make_client(pipeline="real", model="tiny.en", device="cpu", hotwords_file=words)
    snap = await (await upload(client, FIXTURE.read_bytes(), diarize="false")).json()
    final = await wait_for_stage(client, snap["id"], {"complete", "failed"}, timeout=600)
    assert final["stage"] == "complete", final["error"]
    body = await (await client.get(f"/api/tasks/{snap['id']}/transcript")).json()
    assert "Zbigniew Kowalczyk" in body["segments"][0]["text"]


def test_hotwords_file_lines(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# comment\n  Zbigniew Kowalczyk \n\nQuarshie\n")
    assert read_hotwords(words) == "Zbigniew Kowalczyk Quarshie"
    assert Config(hotwords_file=words).hotwords_file == words


def test_a_missing_or_garbled_hotwords_file_stops_the_start(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(ValueError, match=r"missing\.txt cannot be read: No such file or directory"):
        Config(hotwords_file=missing)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Zbigniew\nJos\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt is not UTF-8 text \(byte 12\)"):
        Config(hotwords_file=latin1)
    with pytest.raises(ValueError, match="cannot be read: Is a directory"):
        Config(hotwords_file=tmp_path)
    with pytest.raises(ValueError, match="not UTF-8"):
        HotwordsFile(latin1)  # the runner's own read at start says the same


def _touch(path: Path, text: str | bytes, second: int) -> None:
    """Write and give the file its own modification time: two writes in one clock tick of a
    coarse file system must still count as a change."""
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    os.utime(path, (1_700_000_000 + second, 1_700_000_000 + second))


async def test_hotwords_are_read_again_only_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = tmp_path / "words.txt"
    _touch(words, "Zbigniew\n", 1)
    reads: list[Path] = []

    def counted(path: Path) -> str | None:
        reads.append(path)
        return read_hotwords(path)

    monkeypatch.setattr(hotwords, "read_hotwords", counted)
    current = HotwordsFile(words)
    assert [await current.words(), await current.words()] == ["Zbigniew", "Zbigniew"]
    assert len(reads) == 1  # at start; the jobs after it only looked at the file's stamp
    _touch(words, "Kowalczyk\n", 2)
    assert [await current.words(), await current.words()] == ["Kowalczyk", "Kowalczyk"]
    assert len(reads) == 2
    assert await HotwordsFile(None).words() is None


async def test_a_broken_hotwords_file_keeps_the_last_words_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    words = tmp_path / "words.txt"
    _touch(words, "Zbigniew\n", 1)
    current = HotwordsFile(words)
    caplog.set_level(logging.WARNING, logger="transcriber.jobs.running.hotwords")
    words.unlink()
    assert [await current.words(), await current.words()] == ["Zbigniew", "Zbigniew"]
    _touch(words, b"Jos\xe9\n", 2)  # back, but Latin-1
    assert await current.words() == "Zbigniew"
    assert [r.getMessage() for r in caplog.records] == [
        f"hotwords_file {words} cannot be read: No such file or directory;"
        " jobs keep the hotwords read before"
    ]
    _touch(words, "Quarshie\n", 3)
    assert await current.words() == "Quarshie"
    _touch(words, b"\xff\n", 4)  # broken again after a good read: a new warning
    assert await current.words() == "Quarshie"
    assert caplog.records[-1].getMessage() == (
        f"hotwords_file {words} is not UTF-8 text (byte 0); jobs keep the hotwords read before"
    )
    assert len(caplog.records) == 2


async def test_tasks_run_on_when_the_hotwords_file_breaks(
    make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each job gets the file's words as they are when it starts; a file deleted or garbled
    after the start fails no task (it failed every one with "runner error")."""
    words = tmp_path / "hotwords.txt"
    _touch(words, "Zbigniew\n", 1)
    client = await make_client(hotwords_file=words)
    executor = client.app[RUNNER].executor
    handed: list[str | None] = []
    run = executor.run

    async def recording(slot: int, job: Job) -> JobResult:
        handed.append(job.hotwords)
        return await run(slot, job)

    monkeypatch.setattr(executor, "run", recording)
    for change in (None, "Kowalczyk\n", "", b"\xff\xfe"):
        if change == "":
            words.unlink()
        elif change is not None:
            _touch(words, change, len(handed) + 2)
        snap = await (await upload(client, tone_wav())).json()
        final = await wait_for_stage(client, snap["id"], {"complete", "failed"})
        assert final["stage"] == "complete", final["error"]
    assert handed == ["Zbigniew", "Kowalczyk", "Kowalczyk", "Kowalczyk"]


async def test_api_takes_hotwords_and_initial_prompt(client: Any) -> None:
    snap = await (
        await upload(client, tone_wav(), hotwords="Kowalczyk Quarshie", initial_prompt="Names.")
    ).json()
    assert snap["options"]["hotwords"] == "Kowalczyk Quarshie"
    assert snap["options"]["initial_prompt"] == "Names."
    await wait_for_stage(client, snap["id"], {"complete"})
    long = await upload(client, tone_wav(), hotwords="x" * 1001)
    error = await assert_error(long, 400, "BAD_REQUEST")
    assert error["message"] == "hotwords is longer than 1000 characters."


def test_cli_sends_hotwords_and_initial_prompt(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(tone_wav())
    for server in running_plumbing_server(tmp_path):
        cli = [sys.executable, "-m", "transcriber"]
        words = ["--hotwords", "Zbigniew Kowalczyk", "--initial-prompt", "A note."]
        run = subprocess.run(
            [*cli, "submit", "--server", server.url, str(audio), *words],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        task_id = run.stdout.split("\t")[0]
        status = subprocess.run(
            [*cli, "status", "--server", server.url, task_id, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        options = json.loads(status.stdout)["options"]
        assert (options["hotwords"], options["initial_prompt"]) == ("Zbigniew Kowalczyk", "A note.")
