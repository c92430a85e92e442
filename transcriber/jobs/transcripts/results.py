"""The finished result of a task, read from its last stage's saved output."""

from __future__ import annotations

import json
from typing import Any

from transcriber.jobs.tasks import Tasks
from transcriber.protocol.errors import ApiError
from transcriber.protocol.stages import Stage, pipeline_stages
from transcriber.store.task import Task
from transcriber.worker.job import VOICES_KEY, stage_output


def final_output(tasks: Tasks, task: Task, keep_voices: bool = False) -> dict[str, Any]:
    """The output of the task's last stage: the finished transcript (NOT_READY before).
    The speakers' voices (VOICES_KEY) are left out unless asked for: no answer carries them."""
    if task.stage != Stage.COMPLETE:
        raise ApiError(
            "NOT_READY",
            f"The task is {task.stage.value}; the transcript comes when it is complete.",
            f"stage={task.stage.value}",
        )
    last = pipeline_stages(task.options)[-1].value
    path = stage_output(tasks.work_dir(task.id), last)
    data: dict[str, Any] = json.loads(path.read_text())
    if not keep_voices:
        data.pop(VOICES_KEY, None)
    return data
