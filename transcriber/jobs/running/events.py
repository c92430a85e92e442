"""Applying a job's events to its task: progress within a stage, a finished stage saved."""

from __future__ import annotations

from typing import Any

from transcriber.jobs.engines.executor import Event, Progress, Segments, StageDone
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.stages import Stage, stage_weights
from transcriber.store.task import Task


async def apply_event(tasks: Tasks, task: Task, event: Event) -> None:
    """Apply an event of the task's live attempt (the coordinator checked that it is)."""
    if isinstance(event, StageDone):
        await _stage_done(tasks, task, event)
    elif isinstance(event, Segments):
        await _segments(tasks, task, event)
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


async def _segments(tasks: Tasks, task: Task, event: Segments) -> None:
    """Store the new text, then count it in the snapshot, then send it to the subscribers that
    asked for it: a reconnect or a second viewer reads what was stored."""
    if event.segments:
        await tasks.live.add(task.id, event.piece, event.segments)
    last = max((s["index"] for s in event.segments), default=-1)
    changes: dict[str, Any] = {"segments_count": max(task.segments_count, last + 1)}
    if event.done:
        changes["pieces_done"] = max(task.pieces_done, event.piece + 1)
    if event.language and not task.language:
        changes["language"] = event.language
    if event.segments or "language" in changes:
        updated = await tasks.update(task.id, **changes)
        message = {
            "type": "segments",
            "task_id": task.id,
            "seq": updated.seq,
            "segments": [s | {"speaker": None, "final": False} for s in event.segments],
        }
        if event.segments:
            tasks.hub.announce(task.id, message)
    else:
        # A piece's end with nothing new: saved for resuming, no publish of its own.
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
