"""What a start does with the tasks the last process left unfinished (docs/operations.md)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from transcriber.jobs.tasks import MoveRefused, Tasks
from transcriber.protocol.stages import WORK_STAGES, Stage
from transcriber.store.task import Task

log = logging.getLogger(__name__)

# Runner.enqueue: queue the task if its stage is one of those given, with these changes.
Enqueue = Callable[..., Awaitable[object]]


async def recover(tasks: Tasks, enqueue: Enqueue, max_attempts: int) -> None:
    """Cut uploads fail, queued tasks queue again in order, running ones resume (or fail
    INTERRUPTED once `max_attempts` restarts have cut them)."""
    for task in await tasks.store.unfinished():
        tasks.prime([task])
        if task.stage == Stage.UPLOADING:
            tasks.audio_path(task).unlink(missing_ok=True)
            await _fail(
                tasks,
                task,
                "UPLOAD_INCOMPLETE",
                "the server restarted while the file was being uploaded",
            )
        elif task.stage == Stage.QUEUED:
            await enqueue(task.id, (Stage.QUEUED,))
        else:
            await resume_or_fail(tasks, task.id, enqueue, max_attempts)


async def resume_or_fail(tasks: Tasks, task_id: str, enqueue: Enqueue, max_attempts: int) -> None:
    """A running task that was cut (a restart, a lost node) queues again to resume after its
    last saved stage, or fails INTERRUPTED once it has been cut `max_attempts` times. A task
    that left its work stage meanwhile (a cancel) is left as it is."""
    task = await tasks.get(task_id)
    if task is None or not task.stage.running:
        return
    cuts = task.interruptions + 1
    try:
        if cuts >= max_attempts:
            await tasks.update(task_id, expect=WORK_STAGES, interruptions=cuts)
            await tasks.fail(
                task_id, "INTERRUPTED", "", f"interrupted by {cuts} restarts", expect=WORK_STAGES
            )
        else:
            log.info("resuming task %s after %s", task_id, task.done_stages or "nothing")
            await enqueue(task_id, WORK_STAGES, interruptions=cuts)
    except MoveRefused as exc:
        log.info("task %s was not resumed: it is %s now", task_id, exc.stage.value)


async def _fail(tasks: Tasks, task: Task, code: str, detail: str) -> None:
    await tasks.fail(task.id, code, "", detail)
