"""Taking in an upload: store the bytes of one file, probe them, fail the task on bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader

from transcriber.config import Config
from transcriber.jobs.tasks import Tasks
from transcriber.jobs.upload import CHUNK, receive
from transcriber.protocol.errors import CODES, ApiError
from transcriber.store.task import Task
from transcriber.worker.pipeline.audio import probe
from transcriber.worker.pipeline.types import PipelineError


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
        duration = await asyncio.to_thread(probe, path)
    except PipelineError as exc:
        await tasks.fail(task.id, exc.code, exc.message or CODES[exc.code][1], exc.detail)
        raise ApiError(exc.code, exc.message or None, exc.detail, task_id=task.id) from exc
    if duration > config.max_audio_seconds:
        detail = f"{duration:.0f} s; the limit is {config.max_audio_seconds:.0f} s"
        await tasks.fail(task.id, "AUDIO_TOO_LONG", CODES["AUDIO_TOO_LONG"][1], detail)
        raise ApiError("AUDIO_TOO_LONG", detail=detail, task_id=task.id)
    return await tasks.update(task.id, size=size, duration=round(duration, 3), stage_progress=100)
