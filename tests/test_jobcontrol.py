"""Cancel, delete and the watchdog at every point of a job's life.

The races between the queue, the coordinator and the executor are hit deterministically with
a fake executor (the coordinator and Tasks are real, on a real SQLite file); the same points
are then checked with real worker processes on the plumbing pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from transcriber.jobs.engines.executor import EventSink, Progress, WorkerLost
from transcriber.jobs.hub import Hub
from transcriber.jobs.running.runner import Runner
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.options import DEFAULT_OPTIONS
from transcriber.protocol.stages import Stage
from transcriber.store.db import Store
from transcriber.store.task import Task
from transcriber.worker.job import Job, JobResult
from transcriber.worker.pipeline.types import Cancelled

from .conftest import plumbing_config


class FakeExecutor:
    """Runs nothing: a job waits until the test ends it. A cooperative job stops on cancel;
    a stuck one only when killed, like a worker inside a library call."""

    slots = 1

    def __init__(self, cooperative: bool = True) -> None:
        self.cooperative = cooperative
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.killed: list[str] = []
        self.jobs: dict[str, asyncio.Future[JobResult]] = {}
        self.sink: EventSink | None = None
        self.running = asyncio.Event()

    async def start(self, sink: EventSink) -> None:
        self.sink = sink

    async def stop(self) -> None:
        pass

    async def run(self, slot: int, job: Job) -> JobResult:
        self.started.append(job.task_id)
        future = self.jobs[job.task_id] = asyncio.get_running_loop().create_future()
        self.running.set()
        return await future

    def cancel(self, job: Job) -> None:
        self.cancelled.append(job.task_id)
        future = self.jobs.get(job.task_id)
        if self.cooperative and future is not None and not future.done():
            future.set_exception(Cancelled("transcribing"))

    async def kill(self, job: Job) -> None:
        self.killed.append(job.task_id)
        future = self.jobs.get(job.task_id)
        if future is not None and not future.done():
            future.set_exception(WorkerLost("killed"))

    def finish(self, task_id: str) -> None:
        self.jobs[task_id].set_result(JobResult(["transcribing", "aligning", "diarizing"]))


Harness = tuple[Runner, Tasks, FakeExecutor]
MakeRunner = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_runner(tmp_path: Path) -> AsyncIterator[MakeRunner]:
    opened: list[tuple[Runner, Store]] = []

    async def factory(
        cooperative: bool = True, hook: Callable[[Runner], None] | None = None, **settings: Any
    ) -> Harness:
        config = plumbing_config(tmp_path, **{"cancel_grace": 0.5, **settings})
        store = await Store.open(config.db_path)
        tasks = Tasks(store, Hub(), config.files_dir)
        executor = FakeExecutor(cooperative)
        runner = Runner(config, tasks, executor)
        opened.append((runner, store))
        if hook is not None:
            hook(runner)  # before the slot loops wait on the queue
        await runner.start()
        return runner, tasks, executor

    yield factory
    for runner, store in opened:
        await runner.stop()
        await store.close()


async def new_task(tasks: Tasks, name: str = "a.wav") -> Task:
    task = await tasks.create(name, dict(DEFAULT_OPTIONS), ".wav")
    tasks.audio_path(task).write_bytes(b"RIFF")
    return await tasks.update(task.id, duration=3.0, stage_progress=100)


async def settled(tasks: Tasks, task_id: str, stage: Stage, timeout: float = 20) -> Task:
    async def reached() -> Task:
        while True:
            task = await tasks.get(task_id)
            assert task is not None
            if task.stage == stage:
                return task
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(reached(), timeout)


async def idle(runner: Runner, timeout: float = 20) -> None:
    async def wait() -> None:
        while runner.busy:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


async def test_cancel_while_queued_never_starts(make_runner: MakeRunner) -> None:
    runner, tasks, executor = await make_runner()
    first, second = await new_task(tasks), await new_task(tasks)
    await runner.enqueue(first.id, (Stage.UPLOADING,))
    await runner.enqueue(second.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    await runner.cancel(second.id)
    executor.finish(first.id)
    assert (await settled(tasks, first.id, Stage.COMPLETE)).progress == 100
    await idle(runner)
    assert executor.started == [first.id]
    cancelled = await settled(tasks, second.id, Stage.CANCELLED)
    assert cancelled.error is not None and cancelled.error["stage"] == "queued"


async def test_cancel_just_after_dequeue_never_submits(make_runner: MakeRunner) -> None:
    targets: list[str] = []

    def cancel_on_dequeue(runner: Runner) -> None:
        take = runner.queue.get

        async def take_then_cancel() -> str:
            task_id = await take()
            if task_id in targets:
                await runner.cancel(task_id)  # lands between the dequeue and the submission
            return task_id

        runner.queue.get = take_then_cancel  # type: ignore[method-assign]

    runner, tasks, executor = await make_runner(hook=cancel_on_dequeue)
    target, after = await new_task(tasks), await new_task(tasks)
    targets.append(target.id)
    await runner.enqueue(target.id, (Stage.UPLOADING,))
    await runner.enqueue(after.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    assert executor.started == [after.id]  # the slot went straight to the next task
    executor.finish(after.id)
    assert (await settled(tasks, after.id, Stage.COMPLETE)).attempt == 1
    cancelled = await settled(tasks, target.id, Stage.CANCELLED)
    assert (cancelled.attempt, cancelled.error and cancelled.error["code"]) == (0, "CANCELLED")


async def test_cancel_while_the_start_is_written_never_submits(make_runner: MakeRunner) -> None:
    runner, tasks, executor = await make_runner()
    target, after = await new_task(tasks), await new_task(tasks)
    save = tasks.store.save

    async def save_then_cancel(task: Task) -> None:
        await save(task)
        if task.id == target.id and task.stage == Stage.TRANSCRIBING:
            await runner.cancel(task.id)

    tasks.store.save = save_then_cancel  # type: ignore[method-assign]
    await runner.enqueue(target.id, (Stage.UPLOADING,))
    await runner.enqueue(after.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    assert executor.started == [after.id]
    executor.finish(after.id)
    await settled(tasks, after.id, Stage.COMPLETE)
    cancelled = await settled(tasks, target.id, Stage.CANCELLED)
    assert cancelled.error is not None and cancelled.error["stage"] == "transcribing"
    stored = await tasks.store.get(target.id)
    assert stored is not None and stored.stage == Stage.CANCELLED  # the row agrees


async def test_cooperative_cancel_frees_the_slot_without_a_kill(make_runner: MakeRunner) -> None:
    runner, tasks, executor = await make_runner()
    task = await new_task(tasks)
    await runner.enqueue(task.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    await runner.cancel(task.id)
    await idle(runner)
    assert (executor.cancelled, executor.killed) == ([task.id], [])
    assert (await settled(tasks, task.id, Stage.CANCELLED)).error is not None


async def test_stuck_job_is_killed_after_the_grace_and_the_next_runs(
    make_runner: MakeRunner,
) -> None:
    # Stuck before its first progress (loading a model): only the kill stops it.
    runner, tasks, executor = await make_runner(cooperative=False, cancel_grace=0.5)
    stuck, after = await new_task(tasks), await new_task(tasks)
    await runner.enqueue(stuck.id, (Stage.UPLOADING,))
    await runner.enqueue(after.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    executor.running.clear()
    await runner.cancel(stuck.id)
    assert executor.killed == []  # asked first
    await asyncio.wait_for(executor.running.wait(), 20)
    assert (executor.cancelled, executor.killed, executor.started) == (
        [stuck.id],
        [stuck.id],
        [stuck.id, after.id],
    )
    executor.finish(after.id)
    await settled(tasks, after.id, Stage.COMPLETE)
    cancelled = await settled(tasks, stuck.id, Stage.CANCELLED)
    assert cancelled.error is not None and cancelled.error["code"] == "CANCELLED"


async def test_delete_of_a_stuck_job_kills_it_before_removing_files(
    make_runner: MakeRunner,
) -> None:
    runner, tasks, executor = await make_runner(cooperative=False, cancel_grace=0.3)
    task = await new_task(tasks)
    await runner.enqueue(task.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    folder = tasks.work_dir(task.id)
    await runner.delete(task.id)
    assert executor.killed == [task.id]
    assert not folder.exists()
    assert await tasks.store.get(task.id) is None
    assert runner.busy == 0


async def test_watchdog_fails_a_silent_job_with_job_timeout(make_runner: MakeRunner) -> None:
    runner, tasks, executor = await make_runner(cooperative=False, stall_timeout=0.5)
    task = await new_task(tasks)
    await runner.enqueue(task.id, (Stage.UPLOADING,))
    failed = await settled(tasks, task.id, Stage.FAILED)
    assert failed.error is not None
    assert (failed.error["code"], failed.error["stage"]) == ("JOB_TIMEOUT", "transcribing")
    assert failed.error["message"] == "The job took too long and was stopped."
    assert "no progress for" in failed.error["detail"]
    assert "stall timeout is 0.5 s" in failed.error["detail"]
    assert executor.killed == [task.id]


async def test_watchdog_fails_a_job_past_its_time_limit(make_runner: MakeRunner) -> None:
    runner, tasks, executor = await make_runner(job_timeout=1.0, stall_timeout=60)
    task = await new_task(tasks)
    await runner.enqueue(task.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    assert executor.sink is not None
    for pct in range(1, 100):  # progress keeps coming: only the time limit applies
        await executor.sink(Progress(task.id, 1, "transcribing", pct, f"step {pct}"))
        current = tasks.current(task.id)
        if current is None or current.stage == Stage.FAILED:
            break
        await asyncio.sleep(0.1)
    failed = await settled(tasks, task.id, Stage.FAILED)
    assert failed.error is not None and failed.error["code"] == "JOB_TIMEOUT"
    assert "job timeout is 1 s" in failed.error["detail"]
    assert failed.stage_progress > 0
