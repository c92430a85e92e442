"""Races in a task's life: every change of stage is checked and made in one step.

Each scenario here went wrong before the stage moves had one owner (MOVES in
protocol/stages.py, checked by Tasks.update): an injected delay or a fake executor puts the
second actor exactly in the gap between the first one's check and its change.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from transcriber.jobs.engines.executor import NodeLost
from transcriber.jobs.hub import Hub
from transcriber.jobs.intake import ingest
from transcriber.jobs.running.retention import expire_tasks
from transcriber.jobs.tasks import MoveRefused, Tasks
from transcriber.protocol.stages import MOVES, Stage
from transcriber.store.db import Store
from transcriber.store.task import Task
from transcriber.web.keys import RUNNER, TASKS
from transcriber.worker.job import Job, JobResult

from .conftest import ClientFactory, upload, wait_for_stage
from .daskcluster import until
from .test_jobcontrol import FakeExecutor, MakeRunner, idle, make_runner, new_task, settled

__all__ = ["make_runner"]  # the fixture, used by name

S = Stage
# The moves a task may make, written out by hand: the table in protocol/stages.py must say
# exactly this.
ALLOWED = {
    S.UPLOADING: {S.UPLOADING, S.QUEUED, S.FAILED, S.CANCELLED},
    S.QUEUED: {S.QUEUED, S.TRANSCRIBING, S.ALIGNING, S.DIARIZING, S.FAILED, S.CANCELLED},
    S.TRANSCRIBING: {
        *(S.TRANSCRIBING, S.ALIGNING, S.DIARIZING),
        *(S.COMPLETE, S.QUEUED, S.FAILED, S.CANCELLED),
    },
    S.ALIGNING: {S.ALIGNING, S.DIARIZING, S.COMPLETE, S.QUEUED, S.FAILED, S.CANCELLED},
    S.DIARIZING: {S.DIARIZING, S.COMPLETE, S.QUEUED, S.FAILED, S.CANCELLED},
    S.COMPLETE: {S.QUEUED},
    S.FAILED: {S.QUEUED},
    S.CANCELLED: {S.QUEUED},
}


async def test_every_move_is_allowed_or_refused_as_the_table_says(tmp_path: Path) -> None:
    assert {old: set(new) for old, new in MOVES.items()} == ALLOWED
    store = await Store.open(tmp_path / "t.sqlite3")
    try:
        tasks = Tasks(store, Hub(), tmp_path / "files")
        for old in Stage:
            for new in Stage:
                task_id = f"{old.value}-{new.value}"
                await store.save(Task(task_id, "a.wav", "source.wav", stage=old, seq=5))
                if new in ALLOWED[old]:
                    moved = await tasks.update(task_id, stage=new)
                    assert (moved.stage, moved.seq) == (new, 6)
                    continue
                with pytest.raises(MoveRefused) as refused:
                    await tasks.update(task_id, stage=new, detail="changed")
                assert refused.value.status == 409
                assert refused.value.body["code"] == "CONFLICT"
                row = await store.get(task_id)
                assert row is not None and (row.stage, row.seq, row.detail) == (old, 5, "")
    finally:
        await store.close()


async def test_expect_refuses_a_stage_that_changed_since_the_caller_looked(
    make_runner: MakeRunner,
) -> None:
    runner, tasks, _ = await make_runner()
    task = await new_task(tasks)
    await runner.cancel(task.id)
    with pytest.raises(MoveRefused):
        await runner.enqueue(task.id, (Stage.UPLOADING,))
    assert (await settled(tasks, task.id, Stage.CANCELLED)).attempt == 0
    assert len(runner.queue) == 0


async def slow_saves(client: Any, seconds: float) -> None:
    store = client.server.app[TASKS].store
    save = store.save

    async def slow(task: Task) -> None:
        await asyncio.sleep(seconds)
        await save(task)

    store.save = slow


async def test_of_two_retries_at_once_exactly_one_queues_the_task(
    make_client: ClientFactory, wav_bytes: bytes
) -> None:
    client = await make_client(plumbing_stage_seconds=1.0)
    created = await (await upload(client, wav_bytes)).json()
    await client.post(f"/api/tasks/{created['id']}/cancel")
    cancelled = await wait_for_stage(client, created["id"], {"cancelled"})
    await slow_saves(client, 0.2)  # both retries pass the route's check before either writes
    url = f"/api/tasks/{created['id']}/retry"
    first, second = await asyncio.gather(client.post(url), client.post(url))
    assert sorted([first.status, second.status]) == [200, 409]
    refused = first if first.status == 409 else second
    assert (await refused.json())["error"]["code"] == "CONFLICT"
    done = await wait_for_stage(client, created["id"], {"complete", "failed"}, timeout=60)
    # One more run, not two.
    assert (done["stage"], done["attempt"]) == ("complete", cancelled["attempt"] + 1)
    await idle(client.server.app[RUNNER])


async def test_a_cancel_while_the_upload_is_probed_is_not_overwritten(
    make_client: ClientFactory, wav_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    probing, cancelled = threading.Event(), threading.Event()
    real = ingest.inspect

    def slow_inspect(path: Path) -> Any:
        probing.set()
        cancelled.wait(10)
        return real(path)

    monkeypatch.setattr(ingest, "inspect", slow_inspect)
    client = await make_client()
    resp = await client.post("/api/tasks", json={"filename": "a.wav", "size": len(wav_bytes)})
    task_id = (await resp.json())["id"]
    put = asyncio.create_task(client.put(f"/api/tasks/{task_id}/audio", data=wav_bytes))
    await asyncio.get_running_loop().run_in_executor(None, probing.wait, 10)
    assert (await client.post(f"/api/tasks/{task_id}/cancel")).status == 200
    cancelled.set()
    answer = await put
    assert answer.status == 409
    assert (await answer.json())["error"]["code"] == "CONFLICT"
    await asyncio.sleep(1.0)  # a queued task would have started by now
    snap = await (await client.get(f"/api/tasks/{task_id}")).json()
    assert (snap["stage"], snap["attempt"], snap["error"]["code"]) == ("cancelled", 0, "CANCELLED")


class NodeLostExecutor(FakeExecutor):
    """The node running the first attempt leaves the cluster."""

    async def run(self, slot: int, job: Job) -> JobResult:
        self.started.append(job.task_id)
        raise NodeLost("node left")


async def test_a_cancel_while_a_lost_node_is_handled_stays_cancelled(
    make_runner: MakeRunner,
) -> None:
    runner, tasks, _ = await make_runner(hook=lambda r: setattr(r, "executor", NodeLostExecutor()))
    save = tasks.store.save

    async def cancel_when_cut(task: Task) -> None:
        await save(task)
        if task.interruptions == 1 and task.stage.running:
            await runner.cancel(task.id)  # lands between the interruption and the requeue

    tasks.store.save = cancel_when_cut  # type: ignore[method-assign]
    task = await new_task(tasks)
    await runner.enqueue(task.id, (Stage.UPLOADING,))
    cancelled = await settled(tasks, task.id, Stage.CANCELLED)
    await asyncio.sleep(0.5)
    assert runner.executor.started == [task.id]  # type: ignore[attr-defined]
    assert (await settled(tasks, task.id, Stage.CANCELLED)).seq == cancelled.seq
    assert len(runner.queue) == 0


class AttemptExecutor(FakeExecutor):
    """Two slots; jobs told apart by attempt. Records whether the earlier attempt of a task was
    still running when a later one started."""

    slots = 2

    def __init__(self) -> None:
        super().__init__(cooperative=False)
        self.overlapped: list[bool] = []
        self.by_attempt: dict[tuple[str, int], asyncio.Future[JobResult]] = {}

    async def run(self, slot: int, job: Job) -> JobResult:
        earlier = self.by_attempt.get((job.task_id, job.attempt - 1))
        self.overlapped.append(earlier is not None and not earlier.done())
        future = self.jobs[job.task_id] = asyncio.get_running_loop().create_future()
        self.by_attempt[(job.task_id, job.attempt)] = future
        self.started.append(job.task_id)
        self.running.set()
        return await future


async def test_a_retry_inside_the_cancel_grace_waits_for_the_old_worker_to_be_killed(
    make_runner: MakeRunner,
) -> None:
    executor = AttemptExecutor()
    runner, tasks, _ = await make_runner(
        hook=lambda r: setattr(r, "executor", executor), cancel_grace=0.5
    )
    task = await new_task(tasks)
    await runner.enqueue(task.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    await runner.cancel(task.id)  # the job ignores it: killed after the grace period
    await runner.enqueue(task.id, (Stage.CANCELLED,), interruptions=0)
    second = await settled(tasks, task.id, Stage.TRANSCRIBING)
    assert second.attempt == 2
    # the stage is written before the slot hands the job to the executor: wait for the hand-over
    await until(lambda: len(executor.started) == 2, 10, "the second attempt to start")
    assert executor.killed == [task.id]  # the watchdog still found the first attempt
    assert executor.overlapped == [False, False]  # never two attempts in one folder
    assert runner.busy == 1
    executor.finish(task.id)
    assert (await settled(tasks, task.id, Stage.COMPLETE)).attempt == 2
    await idle(runner)


async def test_a_slot_survives_a_database_that_is_locked_when_a_job_ends(
    make_runner: MakeRunner,
) -> None:
    runner, tasks, executor = await make_runner()
    first, second = await new_task(tasks), await new_task(tasks)
    save = tasks.store.save
    locked = {"left": 0}

    async def locked_for_a_while(task: Task) -> None:
        if locked["left"] > 0 and task.id == first.id:
            locked["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        await save(task)

    tasks.store.save = locked_for_a_while  # type: ignore[method-assign]
    await runner.enqueue(first.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    executor.running.clear()
    locked["left"] = 2  # the completion, and whatever the runner does about its failure
    executor.finish(first.id)
    await runner.enqueue(second.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)  # the one slot took the next task
    assert executor.started == [first.id, second.id]
    executor.finish(second.id)
    await settled(tasks, second.id, Stage.COMPLETE)
    # The first task's completion was shown at once and written once the lock was gone.
    deadline = time.monotonic() + 10
    while (row := await tasks.store.get(first.id)) is None or row.stage != Stage.COMPLETE:
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.05)


async def test_a_slot_survives_any_error_in_the_runner(make_runner: MakeRunner) -> None:
    runner, tasks, executor = await make_runner()
    first, second = await new_task(tasks), await new_task(tasks)
    broken = {"complete": 1, "fail": 1}
    complete, fail = runner._complete, runner._fail

    async def complete_once_broken(*args: Any) -> None:
        if broken["complete"]:
            broken["complete"] -= 1
            raise RuntimeError("injected")
        await complete(*args)

    async def fail_once_broken(*args: Any) -> None:
        if broken["fail"]:
            broken["fail"] -= 1
            raise RuntimeError("injected too")
        await fail(*args)

    runner._complete = complete_once_broken  # type: ignore[method-assign]
    runner._fail = fail_once_broken  # type: ignore[method-assign]
    await runner.enqueue(first.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    executor.running.clear()
    executor.finish(first.id)
    await runner.enqueue(second.id, (Stage.UPLOADING,))
    await asyncio.wait_for(executor.running.wait(), 10)
    executor.finish(second.id)
    assert (await settled(tasks, second.id, Stage.COMPLETE)).attempt == 1
    assert executor.started == [first.id, second.id]


async def test_retention_keeps_a_task_retried_after_it_was_picked(make_runner: MakeRunner) -> None:
    runner, tasks, executor = await make_runner()
    old = "2026-01-01T00:00:00.000Z"
    picked = Task(
        "picked", "p.wav", "source.wav", stage=Stage.CANCELLED, duration=3.0, updated_at=old
    )
    await tasks.store.save(picked)
    untouched = Task("untouched", "u.wav", "source.wav", stage=Stage.COMPLETE, updated_at=old)
    await tasks.store.save(untouched)
    store = tasks.store
    finished_before = store.finished_before

    async def pick_then_retry(cutoff: str, limit: int) -> list[str]:
        ids = await finished_before(cutoff, limit)
        await runner.enqueue(picked.id, (Stage.CANCELLED,))  # a retry between pick and delete
        return ids

    store.finished_before = pick_then_retry  # type: ignore[method-assign]
    assert await expire_tasks(store, runner.expire, 30) == 1
    assert await store.get("untouched") is None
    await asyncio.wait_for(executor.running.wait(), 10)
    assert executor.started == [picked.id]
    executor.finish(picked.id)
    assert (await settled(tasks, picked.id, Stage.COMPLETE)).attempt == 1
