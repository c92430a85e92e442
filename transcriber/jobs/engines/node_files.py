"""The files a node without the shared data folder reads and writes through the coordinator.

A node fetches a task's audio and the stage outputs finished so far, and sends each stage's
output back as the stage ends (node/fetch.py). Only the task's live attempt may write: an
orphan of an attempt the coordinator has given up on is refused, so it cannot overwrite
what the resumed attempt relies on.
"""

from __future__ import annotations

from pathlib import Path

from transcriber.jobs.tasks import Tasks
from transcriber.protocol.errors import ApiError
from transcriber.worker.job import STAGES, stage_output

# A stage's output is a transcript as JSON: generous for six hours of speech with words.
MAX_STAGE_BYTES = 256 * 1024**2


async def audio_file(tasks: Tasks, task_id: str) -> Path:
    task = await tasks.get(task_id)
    if task is None:
        raise ApiError("UNKNOWN_TASK")
    path = tasks.audio_path(task)
    if not path.is_file():
        raise ApiError("NOT_READY", detail="the task's audio is not stored")
    return path


async def stage_file(tasks: Tasks, task_id: str, stage: str) -> Path:
    if stage not in STAGES or await tasks.get(task_id) is None:
        raise ApiError("NOT_FOUND")
    path = stage_output(tasks.work_dir(task_id), stage)
    if not path.is_file():
        raise ApiError("NOT_FOUND", detail=f"no {stage} output yet")
    return path


async def check_writer(tasks: Tasks, task_id: str, stage: str, attempt: int) -> Path:
    """Where the live attempt's stage output goes; CONFLICT for any other attempt."""
    task = await tasks.get(task_id)
    if stage not in STAGES or task is None:
        raise ApiError("NOT_FOUND")
    if task.attempt != attempt or not task.stage.running:
        raise ApiError("CONFLICT", detail=f"attempt {attempt} is not the task's running one")
    return stage_output(tasks.work_dir(task_id), stage)
