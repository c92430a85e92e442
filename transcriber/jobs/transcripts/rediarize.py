"""Re-running diarization alone, from the saved transcript and alignment.

The task goes back to the queue with only the Diarizing stage left to do: the worker skips
the stages whose output is saved. The latest revision stays the transcript until the new run
completes; then the new speakers become the next revision, with the text edits carried over
and the speaker edits (names, moves) reset (jobs/transcripts.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from transcriber.jobs.options import parse_options
from transcriber.jobs.transcripts.revisions import Transcripts
from transcriber.protocol.errors import ApiError
from transcriber.protocol.stages import Stage
from transcriber.store.task import Task
from transcriber.worker.job import stage_output

SPEAKER_OPTIONS = ("num_speakers", "min_speakers", "max_speakers")


def speaker_options(
    body: object, options: dict[str, Any], models: tuple[str, ...]
) -> dict[str, Any]:
    """The task's options with the new speaker counts (any left out are unset)."""
    if not isinstance(body, dict):
        raise ApiError("BAD_REQUEST", 'Send a JSON object, e.g. {"num_speakers": 3}.')
    unknown = sorted(set(body) - set(SPEAKER_OPTIONS))
    if unknown:
        raise ApiError(
            "BAD_REQUEST", f"Unknown field {unknown[0]!r}.", f"fields: {', '.join(SPEAKER_OPTIONS)}"
        )
    # The callback was allowed when the task was made; each delivery checks its host again.
    kept = (*SPEAKER_OPTIONS, "callback_url")
    base = {k: v for k, v in options.items() if k not in kept}
    checked = parse_options({**base, **body, "diarize": True}, models)
    return checked | {"callback_url": options.get("callback_url")}


async def rediarize(
    transcripts: Transcripts,
    enqueue: Callable[..., Awaitable[Task]],
    task_id: str,
    body: object,
    models: tuple[str, ...],
) -> Task:
    """Queue a complete task to diarize again; `enqueue` is the coordinator's
    (Runner.enqueue, jobs/running), passed in so that this needs no engine."""
    tasks = transcripts.tasks
    async with transcripts.lock(task_id):
        task = await tasks.require(task_id)
        if task.stage != Stage.COMPLETE:
            raise ApiError(
                "CONFLICT",
                f"The task is {task.stage.value}; diarization is re-run once it is complete.",
                f"stage={task.stage.value}",
            )
        options = speaker_options(body, task.options, models)
        if await transcripts.imported(task) is None:
            raise ApiError("NOT_READY", detail="no transcript saved")
        work = tasks.work_dir(task_id)
        if not stage_output(work, Stage.ALIGNING.value).exists():
            raise ApiError("CONFLICT", "The saved alignment of this task is gone.")
        done = [s for s in task.done_stages if s != Stage.DIARIZING.value]
        queued = await enqueue(
            task_id, (Stage.COMPLETE,), options=options, done_stages=done, interruptions=0
        )
        # Only once it is queued (a task that changed meanwhile keeps its speakers), and
        # before any await, so no slot can start the job first.
        stage_output(work, Stage.DIARIZING.value).unlink(missing_ok=True)
        return queued
