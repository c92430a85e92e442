"""HTTP handlers: tasks, uploads, results, health."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from transcriber import __version__
from transcriber.jobs.intake.admission import admit, check_disk, check_queue
from transcriber.jobs.intake.ingest import ingest
from transcriber.jobs.intake.upload import clean_filename, stored_suffix
from transcriber.jobs.options import parse_options
from transcriber.protocol.errors import ApiError
from transcriber.protocol.server import Health, PublicHealth, Workers
from transcriber.protocol.stages import Stage
from transcriber.store.task import Task, task_json
from transcriber.web.auth import authorized, person
from transcriber.web.forms import body_chunks, drain_form, form_until_file, part_chunks
from transcriber.web.keys import CONFIG, HUB, RUNNER, TASKS
from transcriber.web.params import MAX_WAIT, LongPoll, TaskPage
from transcriber.web.parsing import json_body, query

log = logging.getLogger(__name__)


def snapshot_response(
    snapshot: dict[str, Any], status: int = 200, text: str | None = None
) -> web.Response:
    body = json.dumps(snapshot) if text is None else text
    response = web.json_response(text=body, status=status)
    response.headers["ETag"] = f'"{snapshot["seq"]}"'
    response.headers["Cache-Control"] = "no-cache"
    return response


# -- creating tasks ---------------------------------------------------------------------------


async def create_task(request: web.Request) -> web.StreamResponse:
    """Multipart upload, raw audio body, or a JSON body for the two-step upload."""
    admit(request.app[CONFIG], request.app[RUNNER].queue_length, len(request.app[TASKS].uploads))
    ctype = request.content_type
    if ctype == "multipart/form-data":
        return await _create_multipart(request)
    if ctype == "application/json":
        return await _create_empty(request)
    if ctype == "application/x-www-form-urlencoded":
        raise ApiError("BAD_REQUEST", "Send the file as multipart/form-data (curl -F file=@...).")
    return await _create_raw(request)


async def _create_empty(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("filename"), str):
        raise ApiError("BAD_REQUEST", "The JSON body needs a filename.")
    unknown = sorted(set(body) - {"filename", "size", "options"})
    if unknown:
        raise ApiError(
            "BAD_REQUEST", f"Unknown field {unknown[0]!r}.", "fields: filename, size, options"
        )
    raw = body.get("options")
    options = _options(request, {} if raw is None else raw)
    size = body.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise ApiError("BAD_REQUEST", "size must be a whole number of bytes.")
    if size is not None and size > request.app[CONFIG].max_upload_bytes:
        raise ApiError("FILE_TOO_LARGE", detail=f"declared size {size} bytes")
    filename = clean_filename(body["filename"])
    task = await request.app[TASKS].create(
        filename, options, stored_suffix(filename), person(request).name
    )
    if size is not None:
        task = await request.app[TASKS].update(task.id, size=size, detail="Waiting for the file")
    return _created(task)


async def upload_audio(request: web.Request) -> web.Response:
    """Second step of the two-step upload: PUT the bytes of a task still in uploading."""
    task = await request.app[TASKS].require(request.match_info["task_id"])
    if task.stage != Stage.UPLOADING or request.app[TASKS].audio_path(task).exists():
        raise ApiError("CONFLICT", "This task already has its audio.")
    check_disk(request.app[CONFIG])
    total = request.content_length or (task.size or None)
    return await _finish_upload(request, task, body_chunks(request), total)


async def _create_raw(request: web.Request) -> web.Response:
    if not request.can_read_body:
        raise ApiError("BAD_REQUEST", "Send the audio as multipart (field 'file') or as the body.")
    query = {k: v for k, v in request.query.items() if k != "filename"}
    options = _options(request, query)
    filename = clean_filename(request.query.get("filename"))
    _check_declared(request, request.content_length)
    task = await request.app[TASKS].create(
        filename, options, stored_suffix(filename), person(request).name
    )
    chunks = body_chunks(request)
    return await _finish_upload(request, task, chunks, request.content_length)


async def _create_multipart(request: web.Request) -> web.Response:
    reader = await request.multipart()
    fields, part = await form_until_file(reader)
    options = _options(request, {name: values[0] for name, values in fields.items()})
    filename = clean_filename(part.filename)
    _check_declared(request, request.content_length)
    task = await request.app[TASKS].create(
        filename, options, stored_suffix(filename), person(request).name
    )
    response = await _finish_upload(request, task, part_chunks(part), None, request.content_length)
    await drain_form(reader)
    return response


def _options(request: web.Request, raw: object) -> dict[str, Any]:
    config = request.app[CONFIG]
    return parse_options(raw, config.client_models, config.webhook_hosts)


def _check_declared(request: web.Request, length: int | None) -> None:
    limit = request.app[CONFIG].max_upload_bytes
    if length is not None and length > limit + 64 * 1024:
        raise ApiError("FILE_TOO_LARGE", detail=f"{length} bytes sent, the limit is {limit}")


async def _finish_upload(
    request: web.Request,
    task: Task,
    chunks: AsyncIterator[bytes],
    exact: int | None,
    approx: int | None = None,
) -> web.Response:
    app = request.app
    task = await ingest(app[TASKS], app[CONFIG], task, chunks, exact or approx, exact is not None)
    # A cancel that came while the file was probed stays: the task is not queued (409).
    return _created(await request.app[RUNNER].enqueue(task.id, (Stage.UPLOADING,)))


def _created(task: Task) -> web.Response:
    response = snapshot_response(task_json(task), status=201)
    response.headers["Location"] = f"/api/tasks/{task.id}"
    return response


# -- reading and changing tasks ----------------------------------------------------------------


async def list_tasks(request: web.Request) -> web.Response:
    """Newest first. Page on with `before=<next>` from the previous page (or with offset);
    `owner=me` (or a key's name) lists one person's tasks. With --visibility own, a person
    who is not an admin lists only their own whatever they ask."""
    page = query(request, TaskPage)
    before = None
    if page.before is not None:
        created_at, row = page.before.rsplit("_", 1)
        before = (created_at, int(row))
    who = person(request)
    asked = who.name if page.owner == "me" else page.owner
    seen = who.sees(request.app[CONFIG].visibility)
    owner = seen if asked is None else asked
    rows: list[Task] = []
    total, following = 0, None
    if seen is None or owner == seen:
        store = request.app[TASKS].store
        rows, total, following = await store.listing(page.limit, page.offset, before, owner)
    return web.json_response(
        {
            "tasks": [task_json(t) for t in rows],
            "total": total,
            "limit": page.limit,
            "offset": page.offset,
            "next": f"{following[0]}_{following[1]}" if following else None,
        }
    )


async def get_task(request: web.Request) -> web.Response:
    """The snapshot from memory; ETag/If-None-Match; long-poll with ?wait=&since=."""
    task = await request.app[TASKS].require(request.match_info["task_id"])
    hub = request.app[HUB]
    if task.stage == Stage.QUEUED:
        await request.app[RUNNER].show_position(task.id)
    snapshot = hub.latest(task.id) or task_json(task)
    poll = query(request, LongPoll)
    if poll.wait is not None:
        since = snapshot["seq"] if poll.since is None else poll.since
        snapshot = await hub.wait(task.id, since, min(poll.wait, MAX_WAIT)) or snapshot
    etag = f'"{snapshot["seq"]}"'
    if request.headers.get("If-None-Match") == etag:
        raise web.HTTPNotModified(headers={"ETag": etag})
    # The hub encodes each task's latest snapshot once for every reader.
    return snapshot_response(snapshot, text=hub.text(snapshot))


async def cancel_task(request: web.Request) -> web.Response:
    task = await request.app[TASKS].require(request.match_info["task_id"])
    if task.stage.terminal:
        raise ApiError("CONFLICT", f"The task is already {task.stage.value}.")
    await request.app[RUNNER].cancel(task.id)
    return _current(request, task.id)


RETRYABLE = (Stage.FAILED, Stage.CANCELLED)


async def retry_task(request: web.Request) -> web.Response:
    task = await request.app[TASKS].require(request.match_info["task_id"])
    if task.stage not in RETRYABLE:
        raise ApiError("CONFLICT", "Only a failed or cancelled task can be retried.")
    if task.duration is None or not request.app[TASKS].audio_path(task).exists():
        raise ApiError("CONFLICT", "This task never received a whole audio file; upload it again.")
    check_queue(request.app[CONFIG], request.app[RUNNER].queue_length)
    # Checked again as it is queued: of two retries at once, one queues it, the other gets 409.
    await request.app[RUNNER].enqueue(task.id, RETRYABLE, interruptions=0)
    return _current(request, task.id)


async def delete_task(request: web.Request) -> web.Response:
    task = await request.app[TASKS].require(request.match_info["task_id"])
    # Cancels a running job and waits until its worker stopped (at most --cancel-grace).
    await request.app[RUNNER].delete(task.id)
    return web.Response(status=204)


def _current(request: web.Request, task_id: str) -> web.Response:
    task = request.app[TASKS].current(task_id)
    if task is None:
        raise ApiError("UNKNOWN_TASK")
    return snapshot_response(task_json(task))


async def health(request: web.Request) -> web.Response:
    # Open, so that monitors need no token; the settings (model folders among them) only for
    # those who hold it, when one is set.
    if not authorized(request):
        return web.json_response(PublicHealth(version=__version__).model_dump())
    config, runner = request.app[CONFIG], request.app[RUNNER]
    health = Health(
        version=__version__,
        device=config.device,
        model=config.model,
        pipeline=config.pipeline,
        diarization=config.diarization,
        workers=Workers(busy=runner.busy, total=config.workers),
        queue=runner.queue_length,
        retention_days=config.retention_days,
    )
    return web.json_response(health.model_dump())
