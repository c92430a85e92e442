"""Taking in an upload: store the bytes of one file, probe them, fail the task on bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader, MultipartReader

from transcriber.config import Config
from transcriber.jobs.tasks import Tasks
from transcriber.jobs.upload import CHUNK, receive
from transcriber.protocol.errors import ApiError
from transcriber.store.task import Task
from transcriber.worker.pipeline.audio import inspect
from transcriber.worker.pipeline.types import PipelineError


async def form_until_file(reader: MultipartReader) -> tuple[dict[str, list[str]], BodyPartReader]:
    """The one multipart loop: the text fields sent before the `file` part, and that part.

    The file is streamed, never held: options must come before it (curl -F keeps the order).
    A field sent twice is refused, unless its name marks a list ("name[]").
    """
    fields: dict[str, list[str]] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise ApiError("BAD_REQUEST", "Unexpected part in the form.")
        if part.name == "file":
            return fields, part
        if part.name in fields and not part.name.endswith("[]"):
            # Only a list field ("name[]") may come twice: a repeat is a client's mistake.
            raise ApiError("BAD_REQUEST", f"The form field {part.name!r} appears more than once.")
        value = (await part.read(decode=True)).decode("utf-8", "replace")
        fields.setdefault(part.name, []).append(value)
    raise ApiError("BAD_REQUEST", "The form has no 'file' field.")


async def drain_form(reader: MultipartReader) -> None:
    """Read past whatever follows the file part; it is not used."""
    while await reader.next() is not None:
        pass


async def part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def ingest(
    tasks: Tasks,
    config: Config,
    task: Task,
    chunks: AsyncIterator[bytes],
    total: int | None,
    exact: bool,
    digest: Any = None,
) -> Task:
    """Store the upload and read its duration; a bad file fails the task and raises ApiError."""
    path = tasks.audio_path(task)
    limit = config.max_upload_bytes
    size = await receive(chunks, path, tasks, task.id, limit, total, exact, digest)
    try:
        found = await asyncio.to_thread(inspect, path)
    except PipelineError as exc:
        await tasks.fail(task.id, exc.code, exc.message, exc.detail)
        raise ApiError(exc.code, exc.message or None, exc.detail, task_id=task.id) from exc
    duration = found.duration
    if duration > config.max_audio_seconds:
        detail = f"{duration:.0f} s; the limit is {config.max_audio_seconds:.0f} s"
        await tasks.fail(task.id, "AUDIO_TOO_LONG", "", detail)
        raise ApiError("AUDIO_TOO_LONG", detail=detail, task_id=task.id)
    return await tasks.update(
        task.id,
        size=size,
        duration=round(duration, 3),
        media_type=found.media_type,
        stage_progress=100,
    )
