"""The coordinator: ties the queue (jobs/queue.py) and an executor (jobs/executor.py) to Tasks.

It owns attempts, task state, cancel and the watchdog; the executor only runs what it is
handed. One loop per executor slot takes the next task from the queue and runs it there; one
watchdog loop kills jobs that were asked to stop and did not (jobs/supervise.py), fails jobs
past their limits with JOB_TIMEOUT, and fails uploads that stopped sending. With
--retention-days, one more loop deletes old finished tasks (jobs/retention.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from contextlib import suppress
from typing import Any

from transcriber.config import Config
from transcriber.jobs.engines.executor import Event, Executor, Limited, NodeLost, WorkerLost
from transcriber.jobs.engines.local import LocalExecutor
from transcriber.jobs.intake.upload import expire_uploads
from transcriber.jobs.running.events import apply_event
from transcriber.jobs.running.hotwords import HotwordsFile
from transcriber.jobs.running.jobspec import build_job, live_start, resume_point
from transcriber.jobs.running.queue import JobQueue, ordinal_in_queue
from transcriber.jobs.running.recovery import recover, resume_or_fail
from transcriber.jobs.running.retention import BATCH, expire_tasks, sweep_interval
from transcriber.jobs.running.supervise import Running, Stop, job_limit
from transcriber.jobs.tasks import MoveRefused, Tasks
from transcriber.protocol.stages import Stage, pipeline_stages, stage_weights
from transcriber.store.task import Task
from transcriber.worker.job import Job, JobResult
from transcriber.worker.pipeline.types import Cancelled, PipelineError

log = logging.getLogger(__name__)

# How often the watchdog looks: a stop asked for is enforced within this of its grace period.
TICK = 0.25
# How long a slot loop waits after an error in the runner before it takes the next task.
SLOT_PAUSE = 1.0


class Runner:
    def __init__(self, config: Config, tasks: Tasks, executor: Executor | None = None) -> None:
        self.config = config
        self.tasks = tasks
        self.executor: Executor = executor or LocalExecutor(config.workers)
        self.queue = JobQueue()
        self.hotwords = HotwordsFile(config.hotwords_file)
        # The live attempt of each task, and every attempt whose process may still run.
        self._running: dict[str, Running] = {}
        self._jobs: set[Running] = set()
        self._room_changed = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._claimed = 0
        # Called with each task that completes (the transcript index); its failure is logged,
        # never the task's.
        self.on_complete: Callable[[Task], Awaitable[None]] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.executor.start(self._on_event)
        if isinstance(self.executor, Limited):
            self.executor.watch_room(self._room_changed.set)
        for index in range(self.executor.slots):
            self._loops.append(asyncio.create_task(self._slot(index)))
        self._loops.append(asyncio.create_task(self._watch()))
        await recover(self.tasks, self.enqueue, self.config.max_attempts)
        if self.config.retention_days is not None:
            self._loops.append(asyncio.create_task(self._expire(self.config.retention_days)))

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
        return len(self._jobs)

    async def enqueue(self, task_id: str, expect: Collection[Stage], **changes: Any) -> Task:
        """Queue the task, if its stage is one of `expect` (else MoveRefused, 409): checked
        and changed with no await between, so of two racing callers exactly one queues it.
        `changes` are made in the same step (a retry's reset, a re-run's options)."""
        if await self.tasks.get(task_id) is None:
            raise KeyError(task_id)
        current = self.tasks.current(task_id)
        seq = current.seq if current is not None else 0
        position = len(self.queue) + 1
        # Queued (and written) before it can be taken: a slot runs only queued tasks. The floor
        # leaves room for the position to move up once per task ahead, shown without a write.
        task = await self.tasks.update(
            task_id,
            expect=expect,
            stage=Stage.QUEUED,
            progress=0,
            stage_progress=0,
            detail=ordinal_in_queue(position),
            error=None,
            seq_floor=seq + position + 2,
            **changes,
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
        """Mark the task cancelled now; its job (if any) is asked to stop, then killed after
        the grace period. The slot is free again only once the job has stopped."""
        task = await self.tasks.get(task_id)
        if task is None or task.stage.terminal:
            return
        try:
            await self.tasks.fail(task_id, "CANCELLED", "", "cancelled by request", Stage.CANCELLED)
        except MoveRefused:
            return  # it finished while the cancel was being written
        if self.queue.remove(task_id):
            await self._positions_moved()
        self._ask_stop(task_id, Stop.CANCEL, "cancelled by request")

    async def delete(self, task_id: str) -> None:
        """Cancel, wait until every attempt's job has stopped (at most the grace period), then
        remove the task and its files: a worker never runs on after its files are gone."""
        await self.cancel(task_id)
        for running in self._attempts(task_id):
            await running.ended.wait()
        await self.tasks.delete(task_id)

    async def expire(self, task_id: str, cutoff: str) -> bool:
        """Delete the task if it is still finished and untouched since `cutoff` (retention):
        checked right before the delete, with no await between, so a task retried or re-run
        since it was picked stays."""
        if await self.tasks.get(task_id) is None:
            return False
        task = self.tasks.current(task_id)
        if task is None or not task.stage.terminal or task.updated_at >= cutoff:
            return False
        if self._attempts(task_id):
            return False  # a stopped attempt is still going away: next sweep
        await self.tasks.delete(task_id)
        return True

    def _attempts(self, task_id: str) -> list[Running]:
        return [running for running in self._jobs if running.task_id == task_id]

    def _ask_stop(self, task_id: str, stop: Stop, why: str) -> None:
        for running in self._attempts(task_id):
            if running.ask_stop(stop, why, self.config.cancel_grace) and running.job is not None:
                self.executor.cancel(running.job)

    # -- running a job ---------------------------------------------------------------------

    async def _slot(self, index: int) -> None:
        # Survives any error: a slot loop that ended would leave the server taking uploads
        # and running nothing.
        while True:
            await self._claim_room()
            try:
                await self._take(index)
            except Exception:
                log.exception("slot %d: error in the runner; the slot goes on", index)
                await asyncio.sleep(SLOT_PAUSE)
            finally:
                self._claimed -= 1
                self._room_changed.set()

    async def _claim_room(self) -> None:
        # A cluster may have fewer free places than slot loops: the queue stays here until
        # one is free (checked and claimed with no await between). The executor wakes the
        # loops when it has more room; a slot that ends its job wakes them too.
        while self._claimed >= self._room():
            self._room_changed.clear()
            await self._room_changed.wait()
        self._claimed += 1

    def _room(self) -> int:
        if isinstance(self.executor, Limited):
            try:
                return self.executor.room()
            except Exception:
                log.exception("the executor could not say how much room it has")
                return 0
        return self.executor.slots

    async def _take(self, index: int) -> None:
        task_id = await self.queue.get()
        earlier = self._attempts(task_id)
        # Tracked before any await: a cancel from now on finds the job (supervise.py). An
        # attempt stays tracked until its process is gone, even once a retry has replaced it.
        running = self._running[task_id] = Running(task_id, index)
        self._jobs.add(running)
        try:
            for old in earlier:
                # A stopped attempt still running in this task's folder: it is killed within
                # the grace period; the new one starts after it.
                await old.ended.wait()
            await self._positions_moved()
            await self._run(running)
        except KeyError:
            log.info("task %s was deleted while it ran", task_id)
        except Exception:
            log.exception("job for task %s failed in the runner", task_id)
            with suppress(KeyError, MoveRefused):
                await self._fail(task_id, "INTERNAL", "runner error")
        finally:
            self._jobs.discard(running)
            if self._running.get(task_id) is running:
                del self._running[task_id]
            running.ended.set()

    async def _run(self, running: Running) -> None:
        task_id = running.task_id
        # Before the task is read: from its check to its start nothing may await.
        words = await self.hotwords.words()
        resume = await resume_point(self.tasks, task_id)
        task = await self.tasks.get(task_id)
        if task is None or task.stage != Stage.QUEUED or running.stop is not None:
            return
        stages = [s for s in pipeline_stages(task.options) if s.value not in task.done_stages]
        first = stages[0] if stages else Stage.DIARIZING
        attempt = task.attempt + 1
        running.job = build_job(self.config, self.tasks, task, attempt, words, resume)
        text = live_start(resume) if Stage.TRANSCRIBING in stages else {}
        await self.tasks.update(
            task_id,
            attempt=attempt,
            stage=first,
            stage_progress=0,
            detail="Starting",
            progress=stage_weights(task.options).get(first, (0, 0))[0],
            **text,
        )
        if text:
            # The text of the pieces it will decode again goes: they come anew.
            await self.tasks.live.drop_from_piece(task_id, text["pieces_done"])
        if running.stop is not None:
            return  # cancelled while the start was being written: never submitted
        running.submitted(running.job, job_limit(self.config.job_timeout, task.duration))
        await self._execute(running, running.job)

    async def _execute(self, running: Running, job: Job) -> None:
        task_id, attempt = job.task_id, job.attempt
        try:
            result = await self.executor.run(running.slot, job)
            await self._complete(task_id, attempt, result)
        except WorkerLost as exc:
            if running.stop is Stop.TIMEOUT:
                await self._fail(task_id, "JOB_TIMEOUT", running.why, attempt)
            elif running.stop is None and isinstance(exc, NodeLost):
                log.warning("task %s: %s", task_id, exc)
                await resume_or_fail(self.tasks, task_id, self.enqueue, self.config.max_attempts)
            elif running.stop is None:
                await self._fail(task_id, "WORKER_CRASHED", str(exc), attempt)
            else:
                log.info("task %s: worker killed after the cancel grace period", task_id)
        except PipelineError as exc:
            await self._fail(task_id, exc.code, exc.detail, attempt, exc.message)
        except Cancelled:
            log.info("task %s stopped after cancel", task_id)
        except Exception as exc:
            log.exception("task %s failed", task_id)
            await self._fail(task_id, "INTERNAL", f"{type(exc).__name__}: {exc}", attempt)

    # -- the watchdog ----------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for running in list(self._jobs):
                try:
                    await self._supervise(running, now)
                except Exception:
                    log.exception("watchdog: task %s", running.task_id)
            try:
                await expire_uploads(self.tasks, self.config.upload_timeout)
                await self.tasks.flush()
            except Exception:
                log.exception("watchdog: uploads and unsaved changes")

    async def _expire(self, days: float) -> None:
        while True:
            try:
                deleted = await expire_tasks(self.tasks.store, self.expire, days)
            except Exception:
                log.exception("retention sweep")
                deleted = 0
            if deleted < BATCH:
                await asyncio.sleep(sweep_interval(days))

    async def _supervise(self, running: Running, now: float) -> None:
        why = running.overdue(now, self.config.stall_timeout)
        if why is not None:
            log.warning("task %s: %s; killing its worker", running.task_id, why)
            running.ask_stop(Stop.TIMEOUT, why, 0.0)
        if running.job is not None and running.due_for_kill(now):
            running.killed = True
            if why is None:
                log.warning("task %s did not stop within the grace period", running.task_id)
            await self.executor.kill(running.job)

    async def _complete(self, task_id: str, attempt: int, result: JobResult) -> None:
        task = self.tasks.current(task_id)
        if task is None or task.attempt != attempt or task.stage.terminal:
            return
        done = await self.tasks.update(
            task_id,
            segments_count=result.segments,
            stage=Stage.COMPLETE,
            progress=100,
            stage_progress=100,
            detail="Done",
            done_stages=sorted(set(task.done_stages) | set(result.done_stages)),
            timings=task.timings | result.timings,
            language=result.language,
        )
        if self.on_complete is not None:
            try:
                await self.on_complete(done)
            except Exception:
                log.exception("task %s completed, but its transcript was not indexed", task_id)
        final = {"type": "segments_final", "task_id": task_id, "seq": done.seq}
        self.tasks.hub.announce(task_id, final | {"count": result.segments})

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
        await self.tasks.fail(task_id, code, message, detail)

    # -- progress from the executor ---------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        task = self.tasks.current(event.task_id)
        running = self._running.get(event.task_id)
        job = running.job if running is not None else None
        # Only the live attempt of a running task moves it; a cancelled run may still talk.
        live = job is not None and job.attempt == event.attempt
        if live and running is not None:
            running.heard = time.monotonic()
        if not live or task is None or task.attempt != event.attempt or not task.stage.running:
            return
        with suppress(KeyError):  # deleted meanwhile
            await apply_event(self.tasks, task, event)
