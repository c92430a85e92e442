"""One definition per concept: the protocol's pydantic models describe what the server sends,
validate what it receives, and make the OpenAPI components."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from transcriber.jobs.options import parse_options
from transcriber.protocol.errors import (
    CODES,
    ApiError,
    ErrorBody,
    ErrorResponse,
    error_body,
    scrub,
)
from transcriber.protocol.messages import ClientMessage, Ping, ServerMessage, Subscribe
from transcriber.protocol.openai import ModelList
from transcriber.protocol.options import DEFAULT_OPTIONS, Options
from transcriber.protocol.server import Health, SessionState
from transcriber.protocol.snapshot import Snapshot, TaskList
from transcriber.protocol.stages import Stage
from transcriber.protocol.transcripts import RevisionChange, SearchPage, TranscriptRevision
from transcriber.store.task import Task, task_json
from transcriber.web.openapi import build, schemas
from transcriber.web.server import create_app

from .conftest import ClientFactory, plumbing_config, tone_wav, upload, wait_for_stage
from .test_ws import receive


def wire(data: Any) -> str:
    return json.dumps(data)


# -- the snapshot: task_json builds a dict (hot path), the model says what it must be ----------


@pytest.mark.parametrize(
    "task",
    [
        Task(id="0123456789abcdef", filename="a.wav", stored_name="source.wav", seq=1),
        Task(
            id="0123456789abcdef",
            filename="talk.m4a",
            stored_name="source.m4a",
            options=parse_options({"language": "de", "num_speakers": "2", "diarize": "off"}),
            seq=17,
            attempt=2,
            stage=Stage.COMPLETE,
            progress=100,
            stage_progress=100,
            detail="Done",
            duration=12.5,
            size=4000,
            language="de",
        ),
        Task(
            id="fedcba9876543210",
            filename="b.wav",
            stored_name="source.wav",
            options={"language": "en"},  # a row from before all options were stored
            seq=3,
            stage=Stage.FAILED,
            error={"code": "DECODE_FAILED", "message": "m", "detail": "d", "stage": None},
        ),
        Task(
            id="fedcba9876543210",
            filename="b.wav",
            stored_name="source.wav",
            seq=4,
            stage=Stage.CANCELLED,
            error={"code": "CANCELLED", "message": "m", "detail": "d", "stage": "queued"},
        ),
    ],
)
def test_task_json_is_exactly_the_snapshot_model(task: Task) -> None:
    snap = task_json(task)
    parsed = Snapshot.model_validate_json(wire(snap), strict=True)
    assert parsed.model_dump(mode="json", by_alias=True, exclude={"options", "error"}) == {
        k: v for k, v in snap.items() if k not in ("options", "error")
    }
    assert set(Snapshot.model_json_schema()["required"]) == set(snap)


def test_snapshot_model_refuses_drift() -> None:
    snap = task_json(Task(id="0123456789abcdef", filename="a", stored_name="s", seq=1))
    with pytest.raises(ValidationError, match="extra"):
        Snapshot.model_validate_json(wire(snap | {"eta": 5}))
    with pytest.raises(ValidationError, match="progress"):
        Snapshot.model_validate_json(wire(snap | {"progress": 101}))
    with pytest.raises(ValidationError, match="stage"):
        Snapshot.model_validate_json(wire(snap | {"stage": "thinking"}))


# -- options: one model for JSON, form fields and query strings --------------------------------


def test_default_options_come_from_the_model() -> None:
    assert Options().model_dump() == DEFAULT_OPTIONS
    assert list(DEFAULT_OPTIONS) == list(Options.model_fields)
    assert Task(id="x", filename="a", stored_name="s").options == DEFAULT_OPTIONS
    assert DEFAULT_OPTIONS["task"] == "transcribe" and DEFAULT_OPTIONS["diarize"] is True


@pytest.mark.parametrize(
    ("raw", "changed"),
    [
        ({}, {}),
        ({"language": " DE "}, {"language": "de"}),
        ({"language": "pt-BR"}, {"language": "pt-br"}),
        ({"language": "auto"}, {"language": None}),
        ({"language": ""}, {}),
        ({"diarize": "off", "word_timestamps": "No"}, {"diarize": False, "word_timestamps": False}),
        ({"diarize": False}, {"diarize": False}),
        ({"diarize": ""}, {}),
        (
            {"num_speakers": "3", "min_speakers": 2, "max_speakers": "2"},
            {
                "num_speakers": 3,
                "min_speakers": 2,
                "max_speakers": 2,
            },
        ),
        (
            {"task": "translate", "initial_prompt": "Names: Ada"},
            {
                "task": "translate",
                "initial_prompt": "Names: Ada",
            },
        ),
        ({"model": "tiny.en", "num_speakers": None}, {"model": "tiny.en"}),
        ({"temperature": " 0.25 "}, {"temperature": 0.25}),
        ({"temperature": 1}, {"temperature": 1.0}),
    ],
)
def test_options_parse(raw: dict[str, Any], changed: dict[str, Any]) -> None:
    assert parse_options(raw, ("base", "tiny.en")) == DEFAULT_OPTIONS | changed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"x": 1}, "Unknown option 'x'."),
        ({"language": "english!"}, "'english!' is not a language code such as en or de."),
        ({"language": 5}, "Option 'language' must be text."),
        ({"task": "summarize"}, "Option 'task' must be transcribe or translate."),
        ({"diarize": "maybe"}, "Option 'diarize' must be true or false."),
        ({"word_timestamps": 1}, "Option 'word_timestamps' must be true or false."),
        ({"num_speakers": "0"}, "Option 'num_speakers' must be a whole number from 1 to 32."),
        ({"max_speakers": 33}, "Option 'max_speakers' must be a whole number from 1 to 32."),
        ({"min_speakers": True}, "Option 'min_speakers' must be a whole number from 1 to 32."),
        ({"min_speakers": "3", "max_speakers": "2"}, "min_speakers is larger than max_speakers."),
        ({"initial_prompt": "x" * 2001}, "initial_prompt is longer than 2000 characters."),
        ({"model": "m" * 201}, "The model name is too long."),
        ({"temperature": "warm"}, "Option 'temperature' must be a number from 0 to 1."),
        ({"temperature": 1.5}, "Option 'temperature' must be a number from 0 to 1."),
        ({"temperature": "nan"}, "Option 'temperature' must be a number from 0 to 1."),
        ({"temperature": True}, "Option 'temperature' must be a number from 0 to 1."),
        ([1, 2], "Options must be a JSON object."),
    ],
)
def test_bad_options_say_what_is_wrong(raw: Any, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_options(raw)
    assert (caught.value.code, caught.value.status, caught.value.body["message"]) == (
        "BAD_REQUEST",
        400,
        message,
    )
    if raw == {"x": 1}:
        assert caught.value.body["detail"] == f"known options: {', '.join(DEFAULT_OPTIONS)}"


# -- the error shape ---------------------------------------------------------------------------


def test_error_bodies_are_the_error_model() -> None:
    for code in CODES:
        body = ApiError(code, detail="why").body
        assert ErrorBody.model_validate(body).model_dump(exclude_none=True) == body
    assert error_body("UNKNOWN_TASK") == {
        "code": "UNKNOWN_TASK",
        "message": CODES["UNKNOWN_TASK"][1],
        "detail": "",
    }
    assert ApiError("FILE_TOO_LARGE", task_id="0123456789abcdef").body["task_id"]
    with pytest.raises(ValidationError, match="unknown error code"):
        ErrorBody(code="NOPE", message="m", detail="d")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/srv/my data/tasks/ab12/source.wav", "source.wav"),
        (
            "[Errno 2] No such file or directory: '/srv/my data/tasks/ab12/my talk.wav'",
            "[Errno 2] No such file or directory: 'my talk.wav'",
        ),
        ("could not load /opt/Lab Models/base/ (missing)", "could not load … (missing)"),
        (r"C:\Users\ana\My Data\talk.wav: bad header", "talk.wav: bad header"),
        ("C:/Program Files/transcriber/model.bin is missing", "model.bin is missing"),
        (r"OSError: 'C:\\Users\\ana\\My Data\\talk.wav'", "OSError: 'talk.wav'"),
        (r"cannot open \\nas\recordings\day one\a.wav now", "cannot open a.wav now"),
        ("from /srv/a/x.wav to /srv/b c/y.wav, done", "from x.wav to y.wav, done"),
        # Not paths: a URL, a media type, a fraction, a route, a plain message.
        ("see http://lab.example/docs/api for text/plain, 3/4 done", None),
        ("GET /health answered", None),
        ("InvalidDataError: Invalid data found when processing input", None),
    ],
)
def test_errors_show_no_part_of_a_server_path(text: str, shown: str | None) -> None:
    shown = text if shown is None else shown
    assert scrub(text) == shown
    body = ApiError("DECODE_FAILED", message=f"Failed: {text}", detail=text).body
    assert (body["message"], body["detail"]) == (f"Failed: {shown}", shown)


# -- WebSocket messages ------------------------------------------------------------------------


def test_client_messages() -> None:
    sub = ClientMessage.model_validate({"type": "subscribe", "task_id": "0123456789abcdef"}).root
    assert isinstance(sub, Subscribe) and (sub.task_id, sub.last_seq) == ("0123456789abcdef", None)
    assert isinstance(ClientMessage.model_validate({"type": "ping", "pad": 1}).root, Ping)
    for bad in (
        {"type": "subscribe", "task_id": "0123456789abcdef", "last_seq": True},
        {"type": "subscribe", "task_id": "0123456789ABCDEF"},
        {"type": "unsubscribe"},
        {"type": "hello"},
    ):
        with pytest.raises(ValidationError):
            ClientMessage.model_validate(bad)


async def test_what_the_server_sends_is_the_model(make_client: ClientFactory) -> None:
    client = await make_client(heartbeat=0.3)
    async with client.ws_connect("/api/ws") as ws:
        hello = await receive(ws)
        sent = [hello]
        await ws.send_json({"type": "ping"})
        sent.append(await receive(ws))
        await ws.send_json({"type": "subscribe", "task_id": "0123456789abcdef"})
        sent.append(await receive(ws))
        await ws.send_str("{")
        sent.append(await receive(ws))
        snap = await (await upload(client, tone_wav(1.0))).json()
        await ws.send_json({"type": "subscribe", "task_id": snap["id"]})
        while {m["type"] for m in sent} != {"hello", "pong", "error", "task", "heartbeat"}:
            sent.append(await receive(ws))
    for message in sent:
        parsed = ServerMessage.model_validate_json(wire(message), strict=True).root
        assert parsed.type == message["type"]


async def test_http_answers_are_the_models(client: Any) -> None:
    error = await client.get("/api/tasks/0123456789abcdef")
    ErrorResponse.model_validate_json(await error.text(), strict=True)
    bad = await upload(client, b"not audio\n" * 40, filename="notes.wav")
    ErrorResponse.model_validate_json(await bad.text(), strict=True)
    failed_id = (await bad.json())["error"]["task_id"]
    snap = await (await upload(client, tone_wav(1.0), language="en", diarize="false")).json()
    done = await wait_for_stage(client, snap["id"], {"complete"})
    failed = await (await client.get(f"/api/tasks/{failed_id}")).json()
    for one in (snap, done, failed):
        Snapshot.model_validate_json(wire(one), strict=True)
    assert failed["error"]["stage"] is not None
    page = await (await client.get("/api/tasks")).text()
    assert len(TaskList.model_validate_json(page, strict=True).tasks) == 2


async def test_answers_about_the_server_are_the_models(client: Any) -> None:
    health = Health.model_validate_json(await (await client.get("/api/health")).text(), strict=True)
    assert (health.pipeline, health.workers.total, health.retention_days) == ("plumbing", 1, None)
    for method in (client.get, client.delete):
        state = await (await method("/api/session")).text()
        # Without credentials everyone acts as the admin.
        assert SessionState.model_validate_json(state, strict=True) == SessionState(
            token_required=False, signed_in=False, name="admin", admin=True
        )
    models = ModelList.model_validate_json(await (await client.get("/v1/models")).text())
    assert models.data[0].id == "base"


async def test_answers_after_the_run_are_the_models(client: Any) -> None:
    snap = await (await upload(client, tone_wav(10.0), num_speakers="2")).json()
    await wait_for_stage(client, snap["id"], {"complete"})
    url = f"/api/tasks/{snap['id']}"
    first = await client.get(f"{url}/transcript")
    model = TranscriptRevision.model_validate_json(await first.text(), strict=True)
    assert (model.revision, model.source, model.speakers) == (
        0,
        "model",
        ["SPEAKER_00", "SPEAKER_01"],
    )
    assert set(model.timings) == {"transcribing", "aligning", "diarizing"}
    named = await client.patch(
        f"{url}/speakers", json={"SPEAKER_01": "Dana"}, headers={"If-Match": first.headers["ETag"]}
    )
    TranscriptRevision.model_validate_json(await named.text(), strict=True)
    edited = await client.patch(
        f"{url}/segments/1",
        json={"text": "Plumbing, edited"},
        headers={"If-Match": named.headers["ETag"]},
    )
    revision = TranscriptRevision.model_validate_json(await edited.text(), strict=True)
    assert (revision.revision, revision.source, revision.speaker_names) == (
        2,
        "edit",
        {"SPEAKER_01": "Dana"},
    )
    segment = revision.segments[1]
    assert (segment.text, segment.speaker, segment.speaker_label) == (
        "Plumbing, edited",
        "Dana",
        "SPEAKER_01",
    )
    assert (segment.edited, segment.words_timing, segment.words[1].estimated) == (
        True,
        "mixed",
        True,
    )
    minimal = await client.patch(
        f"{url}/segments/0", json={"speaker": "Dana"}, headers={"Prefer": "return=minimal"}
    )
    change = RevisionChange.model_validate_json(await minimal.text(), strict=True)
    assert (change.revision, change.segments[0].index, change.segments[0].speaker) == (3, 0, "Dana")
    renamed = await client.patch(
        f"{url}/speakers", json={"SPEAKER_00": "Eli"}, headers={"Prefer": "return=minimal"}
    )
    change = RevisionChange.model_validate_json(await renamed.text(), strict=True)
    assert (change.segments, change.speaker_names) == (
        [],
        {"SPEAKER_00": "Eli", "SPEAKER_01": "Dana"},
    )
    found = await client.get("/api/search", params={"q": "edited"})
    page = SearchPage.model_validate_json(await found.text(), strict=True)
    assert [(hit.task_id, hit.segment, hit.speaker) for hit in page.hits] == [
        (snap["id"], 1, "Dana")
    ]
    assert (page.limit, page.next_offset, page.hits[0].links.task) == (20, None, url)


# -- the OpenAPI document ----------------------------------------------------------------------


def test_openapi_components_come_from_the_models(tmp_path: Path) -> None:
    document = build(create_app(plumbing_config(tmp_path)).router)
    components = document["components"]["schemas"]
    assert components == schemas()
    assert components["Options"] == Options.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for name in ("Snapshot", "ErrorResponse", "ErrorBody", "TaskList", "NewTask", "Stage"):
        assert name in components
    assert components["Stage"]["enum"] == [s.value for s in Stage]
    assert components["ErrorBody"]["properties"]["code"]["enum"] == sorted(CODES)
    refs = {ref.split("/")[-1] for ref in _refs(document["paths"]) | _refs(components)}
    assert refs <= set(components)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()
