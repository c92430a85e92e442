"""The coordinator: ties the queue (jobs/queue.py) and an executor (jobs/executor.py) to Tasks.

It owns attempts, task state and cancel; the executor only runs what it is handed. One loop
per executor slot takes the next task from the queue and runs it there.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from transcriber.config import Config
from transcriber.jobs.executor import Event, Executor, Progress, StageDone, WorkerLost
from transcriber.jobs.local import LocalExecutor
from transcriber.jobs.queue import JobQueue, ordinal_in_queue
from transcriber.jobs.recovery import recover
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.errors import CODES
from transcriber.protocol.stages import Stage, pipeline_stages, stage_weights
from transcriber.store.task import Task
from transcriber.worker.pipeline.types import Cancelled, PipelineError
from transcriber.worker.process import Job, JobResult

log = logging.getLogger(__name__)


class Runner:
    def __init__(self, config: Config, tasks: Tasks, executor: Executor | None = None) -> None:
        self.config = config
        self.tasks = tasks
        self.executor: Executor = executor or LocalExecutor(config.workers)
        self.queue = JobQueue()
        self._running: dict[str, Job] = {}
        self._loops: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.executor.start(self._on_event)
        for index in range(self.executor.slots):
            self._loops.append(asyncio.create_task(self._slot(index)))
        await recover(self.tasks, self.enqueue, self.config.max_attempts)

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with suppress(asyncio.CancelledError):
                await loop
        await self.executor.stop()

    # -- the queue -------------------------------------------------------------------------

    @property
    def queue_length(self) -> int:
        return len(self.queue)

    @property
    def busy(self) -> int:
        return len(self._running)

    async def enqueue(self, task_id: str) -> Task:
        current = await self.tasks.get(task_id)
        if current is None:
            raise KeyError(task_id)
        position = len(self.queue) + 1
        # Queued (and written) before it can be taken: a slot runs only queued tasks. The floor
        # leaves room for the position to move up once per task ahead, shown without a write.
        task = await self.tasks.update(
            task_id,
            stage=Stage.QUEUED,
            progress=0,
            stage_progress=0,
            detail=ordinal_in_queue(position),
            error=None,
            seq_floor=current.seq + position + 2,
        )
        await self.queue.put(task_id)
        return task

    async def show_position(self, task_id: str) -> None:
        """Bring a waiting task's shown position up to date (called when it is served)."""
        position = self.queue.position(task_id)
        task = self.tasks.current(task_id)
        if position is None or task is None or task.stage != Stage.QUEUED:
            return
        detail = ordinal_in_queue(position)
        if task.detail != detail:
            await self.tasks.show(task_id, detail=detail)

    async def _positions_moved(self) -> None:
        # Only tasks someone watches get the news at once; the rest when they are next served.
        for task_id in self.tasks.hub.watched():
            with suppress(KeyError):
                await self.show_position(task_id)

    async def cancel(self, task_id: str) -> None:
        task = await self.tasks.get(task_id)
        if task is None or task.stage.terminal:
            return
        if self.queue.remove(task_id):
            await self._positions_moved()
        job = self._running.get(task_id)
        if job is not None:
            self.executor.cancel(job)
        message = CODES["CANCELLED"][1]
        await self.tasks.update(
            task_id,
            stage=Stage.CANCELLED,
            detail=message,
            error={
                "code": "CANCELLED",
                "message": message,
                "detail": "cancelled by request",
                "stage": task.stage.value,
            },
        )

    # -- running a job ---------------------------------------------------------------------

    async def _slot(self, index: int) -> None:
        while True:
            task_id = await self.queue.get()
            await self._positions_moved()
            try:
                await self._run(index, task_id)
            except KeyError:
                log.info("task %s was deleted while it ran", task_id)
            except Exception:
                log.exception("job for task %s failed in the runner", task_id)
                with suppress(KeyError):
                    await self._fail(task_id, "INTERNAL", "runner error")

    async def _run(self, index: int, task_id: str) -> None:
        task = await self.tasks.get(task_id)
        if task is None or task.stage != Stage.QUEUED:
            return
        stages = [s for s in pipeline_stages(task.options) if s.value not in task.done_stages]
        first = stages[0] if stages else Stage.DIARIZING
        attempt = task.attempt + 1
        task = await self.tasks.update(
            task_id,
            attempt=attempt,
            stage=first,
            stage_progress=0,
            detail="Starting",
            progress=stage_weights(task.options).get(first, (0, 0))[0],
        )
        job = self._job(task_id, attempt)
        self._running[task_id] = job
        try:
            result = await self.executor.run(index, job)
            await self._complete(task_id, attempt, result)
        except WorkerLost as exc:
            await self._fail(task_id, "WORKER_CRASHED", str(exc), attempt)
        except PipelineError as exc:
            await self._fail(task_id, exc.code, exc.detail, attempt, exc.message)
        except Cancelled:
            log.info("task %s stopped after cancel", task_id)
        except Exception as exc:
            log.exception("task %s failed", task_id)
            await self._fail(task_id, "INTERNAL", f"{type(exc).__name__}: {exc}", attempt)
        finally:
            self._running.pop(task_id, None)

    def _job(self, task_id: str, attempt: int) -> Job:
        task = self.tasks.current(task_id)
        assert task is not None
        c = self.config
        return Job(
            task_id=task_id,
            attempt=attempt,
            audio_path=self.tasks.audio_path(task),
            work_dir=self.tasks.work_dir(task_id),
            stages=tuple(s.value for s in pipeline_stages(task.options)),
            options=task.options,
            pipeline=c.pipeline,
            model=task.options.get("model") or c.model,
            device=c.device,
            models_dir=c.models_dir,
            aligner=c.aligner,
            align_model=c.align_model,
            diarization=c.diarization,
            hf_token=c.hf_token,
            plumbing_stage_seconds=c.plumbing_stage_seconds,
        )

    async def _complete(self, task_id: str, attempt: int, result: JobResult) -> None:
        task = self.tasks.current(task_id)
        if task is None or task.attempt != attempt or task.stage.terminal:
            return
        await self.tasks.update(
            task_id,
            stage=Stage.COMPLETE,
            progress=100,
            stage_progress=100,
            detail="Done",
            done_stages=sorted(set(task.done_stages) | set(result.done_stages)),
            timings=task.timings | result.timings,
            language=result.language,
        )

    async def _fail(
        self,
        task_id: str,
        code: str,
        detail: str,
        attempt: int | None = None,
        message: str = "",
    ) -> None:
        task = self.tasks.current(task_id)
        if task is None or task.stage.terminal:
            return
        if attempt is not None and task.attempt != attempt:
            return
        await self.tasks.fail(task_id, code, message or CODES[code][1], detail)

    # -- progress from the executor ---------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        task = self.tasks.current(event.task_id)
        job = self._running.get(event.task_id)
        # Only the live attempt of a running task moves it; a cancelled run may still talk.
        live = job is not None and job.attempt == event.attempt
        if not live or task is None or task.attempt != event.attempt or not task.stage.running:
            return
        try:
            if isinstance(event, StageDone):
                await self._stage_done(task, event)
            elif isinstance(event, Progress):
                await self._progress(
                    task.id, Stage(event.stage), event.stage_progress, event.detail
                )
        except KeyError:
            pass  # deleted meanwhile

    async def _stage_done(self, task: Task, event: StageDone) -> None:
        changes = {
            "done_stages": sorted(set(task.done_stages) | {event.stage}),
            "timings": task.timings | {event.stage: event.seconds},
        }
        if event.language and event.language != task.language:
            # The detected language is known once transcription ends: show it from then on.
            await self.tasks.update(task.id, language=event.language, **changes)
        else:
            # Not in the snapshot: saved for resuming, without a publish of its own (the next
            # stage's start follows at once).
            await self.tasks.record(task.id, **changes)

    async def _progress(self, task_id: str, stage: Stage, pct: int, detail: str) -> None:
        task = self.tasks.current(task_id)
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
        await self.tasks.update(
            task_id, stage=stage, stage_progress=pct, progress=overall, detail=detail
        )
