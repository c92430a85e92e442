"""Vocabulary: hotwords and initial_prompt (faster-whisper's own) on the API and CLI, and the
server-wide default list (--hotwords-file), checked on a real model with a fixture made for it:
espeak-ng saying "Please send the report to Zbigniew Kowalczyk before Friday." (tests/data/
hotword_en.wav, 16 kHz mono), a name tiny.en does not know."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faster_whisper import WhisperModel

from tests.conftest import DATA, assert_error, tone_wav, upload, wait_for_stage
from tests.serverproc import running_plumbing_server
from transcriber.config import Config
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
    assert Config(hotwords_file=words).default_hotwords == "Zbigniew Kowalczyk Quarshie"
    assert Config().default_hotwords is None
    with pytest.raises(ValueError, match="is not a file"):
        Config(hotwords_file=tmp_path / "missing.txt")


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
