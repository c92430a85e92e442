"""Event-loop side of jobs: the queue, worker processes, the progress pump, recovery, cancel.

Each worker slot has its own single-process pool, so a crash is pinned on the one task that
was running there, and only that pool is rebuilt.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from typing import Any

from transcriber.config import Config
from transcriber.jobs.recovery import recover
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.errors import CODES
from transcriber.protocol.stages import Stage, pipeline_stages, stage_weights
from transcriber.store.task import Task
from transcriber.worker import process as worker
from transcriber.worker.pipeline.types import Cancelled, PipelineError

log = logging.getLogger(__name__)


def ordinal_in_queue(position: int) -> str:
    if position == 1:
        return "Next in queue"
    suffix = {2: "nd", 3: "rd"}.get(position if position < 20 else position % 10, "th")
    return f"{position}{suffix} in queue"


class Runner:
    def __init__(self, config: Config, tasks: Tasks) -> None:
        self.config = config
        self.tasks = tasks
        self._mp = multiprocessing.get_context("spawn")
        self._queue: Any = self._mp.Queue()
        self._pending: list[str] = []
        self._wakeup = asyncio.Condition()
        self._running: dict[str, int] = {}
        self._pids: dict[str, int] = {}
        self._finished: dict[tuple[str, int], asyncio.Event] = {}
        self._messages: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()
        self._background: list[asyncio.Task[None]] = []
        self._executors: list[ProcessPoolExecutor] = []
        self._reader: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._reader = threading.Thread(target=self._read, args=(loop,), daemon=True)
        self._reader.start()
        self._background.append(asyncio.create_task(self._pump()))
        for index in range(self.config.workers):
            self._executors.append(self._new_executor())
            self._background.append(asyncio.create_task(self._slot(index)))
        await recover(self.tasks, self.enqueue, self.config.max_attempts)

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        for task in self._background:
            with suppress(asyncio.CancelledError):
                await task
        for executor in self._executors:
            _terminate(executor)
        self._queue.put(None)
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, 5)
        self._queue.close()
        self._queue.join_thread()

    def _new_executor(self) -> ProcessPoolExecutor:
        threads = max(1, len(os.sched_getaffinity(0)) // self.config.workers)
        return ProcessPoolExecutor(
            1, mp_context=self._mp, initializer=worker.init, initargs=(self._queue, threads)
        )

    # -- the queue -------------------------------------------------------------------------

    @property
    def queue_length(self) -> int:
        return len(self._pending)

    @property
    def busy(self) -> int:
        return len(self._running)

    def worker_pid(self, task_id: str) -> int | None:
        return self._pids.get(task_id)

    async def enqueue(self, task_id: str) -> Task:
        async with self._wakeup:
            self._pending.append(task_id)
            position = len(self._pending)
            task = await self.tasks.update(
                task_id,
                stage=Stage.QUEUED,
                progress=0,
                stage_progress=0,
                detail=ordinal_in_queue(position),
                error=None,
            )
            self._wakeup.notify()
            return task

    async def _next(self) -> str:
        async with self._wakeup:
            await self._wakeup.wait_for(lambda: bool(self._pending))
            task_id = self._pending.pop(0)
            await self._refresh_positions()
            return task_id

    async def _refresh_positions(self) -> None:
        for position, task_id in enumerate(self._pending, start=1):
            with suppress(KeyError):
                await self.tasks.update(task_id, detail=ordinal_in_queue(position))

    async def cancel(self, task_id: str) -> None:
        task = await self.tasks.get(task_id)
        if task is None or task.stage.terminal:
            return
        async with self._wakeup:
            if task_id in self._pending:
                self._pending.remove(task_id)
                await self._refresh_positions()
        attempt = self._running.get(task_id)
        if attempt is not None:
            worker.cancel_flag(self.tasks.work_dir(task_id), attempt).touch()
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
            task_id = await self._next()
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
        finished = self._finished[(task_id, attempt)] = asyncio.Event()
        self._running[task_id] = attempt
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._executors[index], worker.run_job, job)
            # Progress travels on another channel: apply all of it before the final state.
            with suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 10)
            await self._complete(task_id, attempt, result)
        except BrokenProcessPool as exc:
            self._executors[index] = self._new_executor()
            await self._fail(task_id, "WORKER_CRASHED", f"worker process died: {exc}", attempt)
        except PipelineError as exc:
            await self._fail(task_id, exc.code, exc.detail, attempt, exc.message)
        except Cancelled:
            log.info("task %s stopped after cancel", task_id)
        except Exception as exc:
            log.exception("task %s failed", task_id)
            await self._fail(task_id, "INTERNAL", f"{type(exc).__name__}: {exc}", attempt)
        finally:
            self._finished.pop((task_id, attempt), None)
            self._running.pop(task_id, None)
            self._pids.pop(task_id, None)

    def _job(self, task_id: str, attempt: int) -> worker.Job:
        task = self.tasks.current(task_id)
        assert task is not None
        c = self.config
        return worker.Job(
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
            diarization=c.diarization,
            hf_token=c.hf_token,
            plumbing_stage_seconds=c.plumbing_stage_seconds,
        )

    async def _complete(self, task_id: str, attempt: int, result: worker.JobResult) -> None:
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

    # -- progress from the workers ---------------------------------------------------------

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            message = self._queue.get()
            loop.call_soon_threadsafe(self._messages.put_nowait, message)
            if message is None:
                return

    async def _pump(self) -> None:
        while True:
            message = await self._messages.get()
            if message is None:
                return
            try:
                await self._apply(message)
            except KeyError:
                pass
            except Exception:
                log.exception("could not apply progress message %r", message)

    async def _apply(self, message: tuple[Any, ...]) -> None:
        kind, task_id, attempt = message[:3]
        if kind == "finished":
            event = self._finished.get((task_id, attempt))
            if event is not None:
                event.set()
            return
        if kind == "started":
            self._pids[task_id] = message[3]
            return
        task = self.tasks.current(task_id)
        # Only the live attempt of a running task moves it; a cancelled run may still talk.
        live = self._running.get(task_id) == attempt and task is not None
        if not live or task is None or task.attempt != attempt or not task.stage.running:
            return
        if kind == "stage_done":
            stage, seconds, language = message[3], message[4], message[5]
            changes = {
                "done_stages": sorted(set(task.done_stages) | {stage}),
                "timings": task.timings | {stage: seconds},
            }
            if language and language != task.language:
                # The detected language is known once transcription ends: show it from then on.
                await self.tasks.update(task_id, language=language, **changes)
            else:
                # Not in the snapshot: saved for resuming, without a publish of its own (the
                # next stage's start follows at once).
                await self.tasks.record(task_id, **changes)
        elif kind == "progress":
            await self._progress(task_id, Stage(message[3]), message[4], message[5])

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


def _terminate(executor: ProcessPoolExecutor) -> None:
    """Stop worker processes now: a job may run for many minutes, shutdown must not wait."""
    processes = list(getattr(executor, "_processes", {}).values())
    for process in processes:
        with suppress(Exception):
            process.terminate()
    for process in processes:
        with suppress(Exception):
            process.join(5)
    # With its workers gone the pool sees itself broken and its threads and queues close.
    executor.shutdown(wait=True, cancel_futures=True)
