"""Taking in an upload: store the bytes of one file, probe them, fail the task on bad input.

The bytes come as a plain async stream: reading them from a request is web/forms.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from transcriber.config import Config
from transcriber.jobs.intake.upload import receive
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.errors import ApiError
from transcriber.store.task import Task
from transcriber.worker.pipeline.audio import inspect
from transcriber.worker.pipeline.types import PipelineError


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
