"""Applying a job's events to its task: progress within a stage, a finished stage saved."""

from __future__ import annotations

from typing import Any

from transcriber.jobs.engines.executor import Event, Progress, StageDone
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.stages import Stage, stage_weights
from transcriber.store.task import Task


async def apply_event(tasks: Tasks, task: Task, event: Event) -> None:
    """Apply an event of the task's live attempt (the coordinator checked that it is)."""
    if isinstance(event, StageDone):
        await _stage_done(tasks, task, event)
    elif isinstance(event, Progress):
        await _progress(tasks, task.id, Stage(event.stage), event.stage_progress, event.detail)


async def _stage_done(tasks: Tasks, task: Task, event: StageDone) -> None:
    changes: dict[str, Any] = {
        "done_stages": sorted(set(task.done_stages) | {event.stage}),
        "timings": task.timings | {event.stage: event.seconds},
    }
    if event.language and event.language != task.language:
        # The detected language is known once transcription ends: show it from then on.
        await tasks.update(task.id, language=event.language, **changes)
    else:
        # Not in the snapshot: saved for resuming, without a publish of its own (the next
        # stage's start follows at once).
        await tasks.record(task.id, **changes)


async def _progress(tasks: Tasks, task_id: str, stage: Stage, pct: int, detail: str) -> None:
    task = tasks.current(task_id)
    assert task is not None
    start, width = stage_weights(task.options)[stage]
    overall = min(99, max(task.progress, start + width * pct // 100))
    if (stage, pct, detail, overall) == (
        task.stage,
        task.stage_progress,
        task.detail,
        task.progress,
    ):
        return
    await tasks.update(task_id, stage=stage, stage_progress=pct, progress=overall, detail=detail)
