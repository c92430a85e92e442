"""The official `openai` client against the real server process."""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import srt

from .conftest import tone_wav
from .serverproc import ServerProcess, running_plumbing_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_plumbing_server(tmp_path_factory.mktemp("openai"))


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Callable[..., openai.OpenAI]]:
    """Makes official clients; each is closed after the test, failed or not (no socket left)."""
    made: list[openai.OpenAI] = []

    def make(**kwargs: object) -> openai.OpenAI:
        made.append(openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for api in made:
        api.close()


def tasks(server: ServerProcess) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{server.url}/api/tasks") as resp:
        listed: list[dict[str, object]] = json.load(resp)["tasks"]
    return listed


def test_formats(client: Callable[..., openai.OpenAI], server: ServerProcess) -> None:
    api = client()
    audio = ("talk.wav", tone_wav(seconds=4.0), "audio/wav")
    result = api.audio.transcriptions.create(model="whisper-1", file=audio)
    assert result.text == "Plumbing segment 1. Plumbing segment 2."
    verbose = api.audio.transcriptions.create(
        model="whisper-1",
        file=audio,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
        temperature=0.0,
    )
    # OpenAI reports the language by its English name.
    assert (verbose.language, verbose.duration) == ("english", 4.0)
    assert [(s.start, s.end) for s in verbose.segments or []] == [(0.0, 2.0), (2.0, 4.0)]
    assert [w.word for w in verbose.words or []] == ["plumbing", "plumbing"]
    text = api.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert text == "Plumbing segment 1. Plumbing segment 2.\n"
    subs = list(
        srt.parse(
            api.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
        )
    )
    assert [s.content for s in subs] == ["Plumbing segment 1.", "Plumbing segment 2."]
    vtt = api.audio.transcriptions.create(model="whisper-1", file=audio, response_format="vtt")
    assert vtt.startswith("WEBVTT")
    diarized = api.audio.transcriptions.create(
        model="whisper-1",
        file=audio,
        response_format="diarized_json",
        extra_body={"chunking_strategy": "auto"},
    )
    assert [s.speaker for s in diarized.segments] == ["SPEAKER_00", "SPEAKER_00"]
    # Normal tasks, listed with the others; the same file with the same options is one task
    # whatever the response format: json, text, srt and vtt joined the first.
    listed = tasks(server)
    assert sum(1 for t in listed if t["filename"] == "talk.wav") == 3
    assert all(t["stage"] == "complete" for t in listed if t["filename"] == "talk.wav")


def task_of(server: ServerProcess, task_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/api/tasks/{task_id}") as resp:
        task: dict[str, Any] = json.load(resp)
    return task


def test_model_and_temperature_are_honoured(
    client: Callable[..., openai.OpenAI], server: ServerProcess
) -> None:
    api = client()
    audio = ("choice.wav", tone_wav(seconds=2.0, freq=330.0), "audio/wav")
    chosen = api.audio.transcriptions.with_raw_response.create(
        model="tiny.en", file=audio, temperature=0.4
    )
    options = task_of(server, chosen.headers["x-transcriber-task"])["options"]
    assert (options["model"], options["temperature"]) == ("tiny.en", 0.4)
    # whisper-1, what OpenAI's clients send unless told otherwise, is the server's own model.
    default = api.audio.transcriptions.with_raw_response.create(model="whisper-1", file=audio)
    options = task_of(server, default.headers["x-transcriber-task"])["options"]
    assert (options["model"], options["temperature"]) == (None, 0.0)
    with pytest.raises(openai.BadRequestError) as unknown:
        api.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio)
    assert unknown.value.body == {
        "message": "The model 'gpt-4o-transcribe' is not offered by this server."
        " Choose one of: whisper-1, base, tiny.en.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "bad_request",
    }
    with pytest.raises(openai.BadRequestError) as hot:
        api.audio.transcriptions.create(model="whisper-1", file=audio, temperature=1.5)
    body = hot.value.body
    assert isinstance(body, dict)
    assert body["message"] == "Option 'temperature' must be a number from 0 to 1."


def test_failure_has_openai_shape_and_no_retry(
    client: Callable[..., openai.OpenAI], server: ServerProcess
) -> None:
    api = client()
    with pytest.raises(openai.APIStatusError) as failed:
        api.audio.transcriptions.create(
            model="whisper-1", file=("notes.wav", b"not audio at all" * 30, "audio/wav")
        )
    assert failed.value.status_code == 415
    assert failed.value.response.headers["x-should-retry"] == "false"
    body = failed.value.body
    assert isinstance(body, dict)
    assert body["code"] == "unsupported_media"
    assert body["message"] == "This file is not audio or video that the server can read."


def test_unknown_or_repeated_fields_are_refused(
    client: Callable[..., openai.OpenAI], server: ServerProcess
) -> None:
    api = client()
    audio = ("a.wav", tone_wav(0.5), "audio/wav")
    with pytest.raises(openai.BadRequestError) as unknown:
        api.audio.transcriptions.create(model="whisper-1", file=audio, extra_body={"colour": "red"})
    assert unknown.value.body["message"] == "Unknown form field 'colour'."  # type: ignore[index]
    # OpenAI's own fields, lists included, still go through (the official client sends them).
    text = api.audio.transcriptions.create(
        model="whisper-1",
        file=audio,
        response_format="text",
        temperature=0.0,
        timestamp_granularities=["segment"],
    )
    assert "plumbing" in str(text).lower()


def test_retry_after_timeout_joins_the_same_task(
    client: Callable[..., openai.OpenAI], server: ServerProcess, tmp_path: Path
) -> None:
    audio = tone_wav(seconds=6.0, freq=523.0)
    before = len(tasks(server))
    # The whole job takes about 1.5 s: the first try times out and the client retries.
    api = client(timeout=1.0, max_retries=3)
    result = api.audio.transcriptions.create(
        model="whisper-1", file=("retry.wav", io.BytesIO(audio), "audio/wav")
    )
    assert result.text.startswith("Plumbing segment 1.")
    made = [t for t in tasks(server) if t["filename"] == "retry.wav"]
    assert len(made) == 1, made
    assert len(tasks(server)) == before + 1
