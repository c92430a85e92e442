"""The official `openai` client against the real server process."""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import srt
from openai.types.audio import TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent
from pydantic import TypeAdapter

from transcriber.protocol.openai import StreamError, TranscriptTextDelta, TranscriptTextDone
from transcriber.web import openai_stream

from .conftest import ClientFactory, tone_wav
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


PLUMBING = [f"Plumbing segment {n}." for n in range(1, 6)]
WIRE_EVENT: TypeAdapter[TranscriptTextDelta | TranscriptTextDone | StreamError] = TypeAdapter(
    TranscriptTextDelta | TranscriptTextDone | StreamError
)


def cancel(server: ServerProcess, task_id: str) -> None:
    request = urllib.request.Request(f"{server.url}/api/tasks/{task_id}/cancel", method="POST")
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 200


def test_stream_sends_a_delta_per_segment_then_the_final_text(
    client: Callable[..., openai.OpenAI], server: ServerProcess
) -> None:
    api = client()
    audio = ("streamed.wav", tone_wav(seconds=10.0, freq=600.0), "audio/wav")
    stream = api.audio.transcriptions.create(model="whisper-1", file=audio, stream=True)
    task_id = stream.response.headers["x-transcriber-task"]
    events: list[object] = []
    for event in stream:
        if not events:
            # The first delta comes while the task still runs: aligning and diarizing follow
            # the transcribing stage, half a second each.
            assert task_of(server, task_id)["stage"] in ("transcribing", "aligning")
        events.append(event)
    *deltas, done = events
    assert all(isinstance(e, TranscriptionTextDeltaEvent) for e in deltas)
    assert isinstance(done, TranscriptionTextDoneEvent)
    texts = [e.delta for e in deltas if isinstance(e, TranscriptionTextDeltaEvent)]
    assert texts == [PLUMBING[0], *(f" {t}" for t in PLUMBING[1:])]
    assert done.text == "".join(texts) == " ".join(PLUMBING)
    assert task_of(server, task_id)["stage"] == "complete"
    # stream=false is the answer it was: the same request joins the same task, whole text.
    plain = api.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=audio, stream=False
    )
    assert plain.headers["x-transcriber-task"] == task_id
    assert plain.parse().text == done.text
    # Streamed again once complete, the stored segments then the final text; on the wire,
    # Server-Sent Events whose data is the protocol's events exactly.
    with api.audio.transcriptions.with_streaming_response.create(
        model="whisper-1", file=audio, stream=True, response_format="text"
    ) as resp:
        assert resp.headers["content-type"] == "text/event-stream"
        assert resp.headers["x-transcriber-task"] == task_id
        assert resp.headers["x-content-type-options"] == "nosniff"  # set by the handler
        lines = list(resp.iter_lines())
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line]
    assert [line for line in lines if line and not line.startswith("data: ")] == []
    wire = [WIRE_EVENT.validate_python(d) for d in data]
    assert [type(e) for e in wire] == [TranscriptTextDelta] * 5 + [TranscriptTextDone]
    assert data[-1] == {"type": "transcript.text.done", "text": done.text}


def test_a_cancelled_task_ends_the_stream_with_an_error(
    client: Callable[..., openai.OpenAI], server: ServerProcess
) -> None:
    api = client()
    audio = ("cancelled.wav", tone_wav(seconds=10.0, freq=700.0), "audio/wav")
    stream = api.audio.transcriptions.create(model="whisper-1", file=audio, stream=True)
    task_id = stream.response.headers["x-transcriber-task"]
    received = []
    with pytest.raises(openai.APIError) as ended:
        for event in stream:
            received.append(event)
            if len(received) == 1:
                cancel(server, task_id)
    assert ended.value.message == "The task was cancelled."
    assert ended.value.body == {
        "message": "The task was cancelled.",
        "type": "invalid_request_error",
        "param": None,
        "code": "cancelled",
    }
    assert isinstance(received[0], TranscriptionTextDeltaEvent)
    assert received[0].delta == PLUMBING[0]
    assert task_of(server, task_id)["stage"] == "cancelled"


def test_a_failed_task_ends_the_stream_with_an_error(tmp_path: Path) -> None:
    for server in running_plumbing_server(tmp_path, "--job-timeout", "1", stage_seconds=1.0):
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused") as api:
            stream = api.audio.transcriptions.create(
                model="whisper-1",
                file=("slow.wav", tone_wav(seconds=10.0), "audio/wav"),
                stream=True,
            )
            with pytest.raises(openai.APIError) as ended:
                list(stream)
    assert ended.value.body == {
        "message": "The job took too long and was stopped.",
        "type": "server_error",
        "param": None,
        "code": "job_timeout",
    }


def test_stream_refusals_come_before_the_stream(
    client: Callable[..., openai.OpenAI], server: ServerProcess
) -> None:
    api = client()
    audio = ("refused.wav", tone_wav(seconds=1.0), "audio/wav")
    before = len(tasks(server))
    with pytest.raises(openai.BadRequestError) as srt_asked:
        api.audio.transcriptions.create(
            model="whisper-1", file=audio, stream=True, response_format="srt"
        )
    assert srt_asked.value.body == {
        "message": "A streamed transcription's response_format is json or text, not 'srt'.",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": "bad_request",
    }
    with pytest.raises(openai.BadRequestError) as odd:
        api.audio.transcriptions.create(
            model="whisper-1", file=audio, extra_body={"stream": "sometimes"}
        )
    assert odd.value.body["param"] == "stream"  # type: ignore[index]
    assert len(tasks(server)) == before  # refused before a task was made
    # A file that is not audio is refused when its upload is probed: an answer, not a stream.
    with pytest.raises(openai.APIStatusError) as bad:
        api.audio.transcriptions.create(
            model="whisper-1", file=("bad.wav", b"not audio" * 50, "audio/wav"), stream=True
        )
    assert bad.value.status_code == 415
    assert bad.value.body["code"] == "unsupported_media"  # type: ignore[index]


async def test_a_server_error_inside_the_stream_is_its_last_event(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(openai_stream, "final_output", broken)
    client = await make_client()
    form = aiohttp.FormData({"model": "whisper-1", "stream": "true"})
    form.add_field("file", io.BytesIO(tone_wav(2.0)), filename="a.wav", content_type="audio/wav")
    resp = await client.post("/v1/audio/transcriptions", data=form)
    assert (resp.status, resp.content_type) == (200, "text/event-stream")
    data = [json.loads(line[6:]) for line in (await resp.text()).splitlines() if line]
    assert data[0] == {"type": "transcript.text.delta", "delta": "Plumbing segment 1."}
    error = StreamError.model_validate(data[-1]).error
    assert (error.type, error.code) == ("server_error", "internal")
    assert error.message.startswith("Something went wrong inside the server. (reference ")
