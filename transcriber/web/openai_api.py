"""POST /v1/audio/transcriptions, compatible with the official `openai` client.

It runs as a normal task (listed, with live progress on the page) and answers when the task
ends; with stream=true, the text comes as it is decoded, as Server-Sent Events (openai_stream.py).
A client that retries after a timeout sends the same file and fields again: the request
key (a hash of both) lets the retry join the task already made instead of starting another.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from transcriber.formats.text import to_srt, to_vtt
from transcriber.jobs.intake.admission import admit
from transcriber.jobs.intake.ingest import ingest
from transcriber.jobs.intake.upload import clean_filename, stored_suffix
from transcriber.jobs.options import parse_options
from transcriber.jobs.transcripts.results import final_output
from transcriber.protocol.errors import ApiError
from transcriber.protocol.languages import language_name
from transcriber.protocol.openai import (
    DEFAULT_MODEL,
    RESPONSE_FORMATS,
    STREAM_FORMATS,
    ModelCard,
    ModelList,
    OpenAIError,
    OpenAIErrorBody,
)
from transcriber.protocol.stages import Stage
from transcriber.store.task import Task, iso
from transcriber.web.auth import person
from transcriber.web.forms import drain_form, form_until_file, part_chunks
from transcriber.web.keys import CONFIG, HUB, RUNNER, TASKS
from transcriber.web.openai_stream import joined_text, stream_transcript, task_error

log = logging.getLogger(__name__)

# A client's retries come within minutes; an hour later the same file is a new request.
JOIN_WINDOW = timedelta(hours=1)


def openai_error(status: int, message: str, code: str, param: str | None = None) -> web.Response:
    body = OpenAIError(error=OpenAIErrorBody.of(status, message, code, param))
    # The client retries 5xx and 429 unless told not to; a failed transcription will fail again.
    return web.json_response(body.model_dump(), status=status, headers={"x-should-retry": "false"})


async def models(request: web.Request) -> web.Response:
    """GET /v1/models: the models clients may choose, as OpenAI lists them."""
    cards = [ModelCard(id=name) for name in request.app[CONFIG].client_models]
    return web.json_response(ModelList(data=cards).model_dump())


async def transcriptions(request: web.Request) -> web.StreamResponse:
    try:
        return await _transcribe(request)
    except ApiError as exc:
        param = exc.body.get("param")
        return openai_error(exc.status, exc.body["message"], exc.code.lower(), param)
    except HttpProcessingError as exc:
        return openai_error(400, f"The form could not be read: {exc.message}", "bad_request")


async def _transcribe(request: web.Request) -> web.StreamResponse:
    if request.content_type != "multipart/form-data":
        raise ApiError("BAD_REQUEST", "Send multipart/form-data with a 'file' field.")
    # The same admission as POST /api/tasks: a full queue or a full disk answers before a byte.
    admit(request.app[CONFIG], request.app[RUNNER].queue_length, len(request.app[TASKS].uploads))
    reader = await request.multipart()
    fields, part = await form_until_file(reader)
    _check_fields(fields)
    stream = _stream(fields)
    task = await _ingest_file(request, part, fields)
    await drain_form(reader)
    if stream:
        return await stream_transcript(request, task.id, {"x-transcriber-task": task.id})
    return await _answer(request, task, fields)


# The form fields of OpenAI's transcription request; the lists ("[]") may repeat. Other
# fields are refused, so a misspelt option is not silently ignored.
OPENAI_FIELDS = frozenset(
    {"model", "language", "prompt", "response_format", "temperature", "stream"}
    | {"chunking_strategy", "timestamp_granularities", "timestamp_granularities[]", "include[]"}
)


def _check_fields(fields: dict[str, list[str]]) -> None:
    # Repeats are refused by the form loop itself (web.forms.form_until_file).
    for name in fields:
        if name not in OPENAI_FIELDS:
            raise ApiError("BAD_REQUEST", f"Unknown form field {name!r}.")


def _stream(fields: dict[str, list[str]]) -> bool:
    """Whether the answer streams; before the upload is read, so a refusal costs no upload."""
    value = (_first(fields, "stream", "false") or "false").lower()
    if value not in ("true", "false"):
        raise ApiError("BAD_REQUEST", "stream must be true or false.", param="stream")
    fmt = _first(fields, "response_format", "json")
    if value == "true" and fmt not in STREAM_FORMATS:
        raise ApiError(
            "BAD_REQUEST",
            f"A streamed transcription's response_format is {' or '.join(STREAM_FORMATS)},"
            f" not {fmt!r}.",
            param="response_format",
        )
    return value == "true"


def _first(fields: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = fields.get(name)
    return values[0] if values else default


def _options(fields: dict[str, list[str]], allowed: tuple[str, ...]) -> dict[str, Any]:
    """The task's options from OpenAI's fields."""
    fmt = _first(fields, "response_format", "json")
    if fmt not in RESPONSE_FORMATS:
        raise ApiError(
            "BAD_REQUEST",
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}.",
            param="response_format",
        )
    return parse_options(
        {
            "model": _model(_first(fields, "model"), allowed),
            "language": _first(fields, "language"),
            "initial_prompt": _first(fields, "prompt"),
            "temperature": _first(fields, "temperature"),
            "diarize": "true" if fmt == "diarized_json" else "false",
        },
        allowed,
    )


async def _ingest_file(
    request: web.Request, part: BodyPartReader, fields: dict[str, list[str]]
) -> Task:
    options = _options(fields, request.app[CONFIG].client_models)
    filename = clean_filename(part.filename)
    tasks = request.app[TASKS]
    owner = person(request).name
    task = await tasks.create(filename, options, stored_suffix(filename), owner)
    # The owner is part of the request: a retry joins its own task, never another person's.
    digest = hashlib.sha256(json.dumps([options, filename, owner]).encode())
    app = request.app
    task = await ingest(
        app[TASKS], app[CONFIG], task, part_chunks(part), request.content_length, False, digest
    )
    key = digest.hexdigest()
    since = iso(datetime.now(UTC) - JOIN_WINDOW)
    existing = await tasks.store.find_by_key(key, task.id, since)
    if existing is not None:
        log.info("request for task %s repeated: joining it", existing.id)
        await tasks.delete(task.id)
        joined = await tasks.get(existing.id)
        assert joined is not None
        return joined
    return await request.app[RUNNER].enqueue(task.id, (Stage.UPLOADING,), request_key=key)


def _model(name: str | None, allowed: tuple[str, ...]) -> str | None:
    """The task's model option for the form's `model`: whisper-1 (or none) is the default."""
    if not name or name == DEFAULT_MODEL:
        return None
    if name not in allowed:
        choices = ", ".join((DEFAULT_MODEL, *allowed))
        raise ApiError(
            "BAD_REQUEST",
            f"The model {name[:100]!r} is not offered by this server. Choose one of: {choices}.",
            "model: not in the server's --allowed-models",
            param="model",
        )
    return name


async def _answer(
    request: web.Request, task: Task, fields: dict[str, list[str]]
) -> web.StreamResponse:
    hub = request.app[HUB]
    snapshot = hub.latest(task.id)
    while snapshot is not None and not Stage(snapshot["stage"]).terminal:
        snapshot = await hub.wait(task.id, snapshot["seq"], 60) or snapshot
    final = await request.app[TASKS].get(task.id)
    if final is None or final.stage != Stage.COMPLETE:
        status, error = task_error(final)
        return openai_error(status, error.message, error.code)
    data = final_output(request.app[TASKS], final)
    fmt = _first(fields, "response_format", "json") or "json"
    words = "word" in fields.get("timestamp_granularities[]", []) + fields.get(
        "timestamp_granularities", []
    )
    headers = {"x-transcriber-task": final.id}
    return _render(fmt, data, words, final, headers)


def _text(data: dict[str, Any]) -> str:
    return joined_text(s["text"] for s in data["segments"])


def _render(
    fmt: str, data: dict[str, Any], words: bool, task: Task, headers: dict[str, str]
) -> web.StreamResponse:
    plain = {**data, "segments": [{**s, "speaker": None} for s in data["segments"]]}
    if fmt == "text":
        return web.Response(text=_text(data) + "\n", headers=headers)
    if fmt == "srt":
        return web.Response(text=to_srt(plain), headers=headers)
    if fmt == "vtt":
        return web.Response(text=to_vtt(plain), content_type="text/vtt", headers=headers)
    body: dict[str, Any] = {"text": _text(data)}
    if fmt == "verbose_json":
        body |= _verbose(data, words, task)
    elif fmt == "diarized_json":
        body |= _diarized(data)
    return web.json_response(body, headers=headers)


def _verbose(data: dict[str, Any], words: bool, task: Task) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": task.options.get("task", "transcribe"),
        "language": language_name(data["language"]),
        "duration": data["duration"],
        "segments": [
            {
                "id": s["id"],
                "seek": 0,
                "start": s["start"],
                "end": s["end"],
                "text": s["text"],
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
            for s in data["segments"]
        ],
    }
    if words:
        body["words"] = [
            {"word": w["word"].strip(), "start": w["start"], "end": w["end"]}
            for s in data["segments"]
            for w in s.get("words", [])
        ]
    return body


def _diarized(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": "transcribe",
        "duration": data["duration"],
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{s['id']}",
                "start": s["start"],
                "end": s["end"],
                "text": s["text"].strip(),
                "speaker": s.get("speaker") or "A",
            }
            for s in data["segments"]
        ],
        "usage": {"type": "duration", "seconds": round(data["duration"])},
    }
