"""The local executor: one single-process pool per slot, each with its own progress channel.

A crash is pinned on the one job that was running in that slot, and only that slot is rebuilt.
Each slot has its own multiprocessing queue, so a worker killed while it holds its queue's
write lock silences no other slot. `kill` (a cancel past its grace period, the watchdog) kills
a slot's worker with SIGKILL: the job's `run` raises WorkerLost and the slot is rebuilt before
it runs anything else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from typing import Any

from transcriber.jobs.engines.executor import EventSink, WorkerLost, decode_event
from transcriber.worker import process as worker
from transcriber.worker.job import Job, JobResult, cancel_flag
from transcriber.worker.slot import WorkerSlot

log = logging.getLogger(__name__)


class _Slot:
    """A worker slot (worker/slot.py) and the thread that hands its messages to the loop."""

    def __init__(self, threads: int, loop: asyncio.AbstractEventLoop) -> None:
        self.worker = WorkerSlot(threads)
        self.messages: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(loop,), daemon=True)
        self._reader.start()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        # Survives what a killed worker leaves in the pipe; only a closed channel ends it.
        while not self._stop.is_set():
            try:
                message = self.worker.receive(0.5)
            except OSError:
                return
            if message is not None:
                loop.call_soon_threadsafe(self.messages.put_nowait, message)

    def kill(self) -> None:
        self.worker.kill()

    async def close(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._reader.join, 5)
        self.worker.close()


class LocalExecutor:
    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._threads = max(1, len(os.sched_getaffinity(0)) // workers)
        self._slots: list[_Slot] = []
        self._pumps: list[asyncio.Task[None]] = []
        self._finished: dict[tuple[str, int], asyncio.Event] = {}
        self._jobs: dict[int, Job] = {}
        self._killed: set[int] = set()
        self._sink: EventSink | None = None

    @property
    def slots(self) -> int:
        return self._workers

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        for index in range(self._workers):
            self._slots.append(self._new_slot())
            self._pumps.append(asyncio.create_task(self._pump(index)))

    async def stop(self) -> None:
        for pump in self._pumps:
            pump.cancel()
        for pump in self._pumps:
            with suppress(asyncio.CancelledError):
                await pump
        for slot in self._slots:
            await slot.close()

    def _new_slot(self) -> _Slot:
        return _Slot(self._threads, asyncio.get_running_loop())

    async def run(self, slot: int, job: Job) -> JobResult:
        if slot in self._killed:
            # Killed after its last job returned (a late kill): a fresh worker, not a broken pool.
            await self._rebuild(slot)
        key = (job.task_id, job.attempt)
        finished = self._finished[key] = asyncio.Event()
        self._jobs[slot] = job
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._slots[slot].worker.pool, worker.run_job, job)
            # Progress travels on the slot's channel: hand all of it over before the result.
            with suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 10)
            return result
        except BrokenProcessPool as exc:
            await self._rebuild(slot)
            raise WorkerLost(f"worker process died: {exc}") from exc
        finally:
            self._finished.pop(key, None)
            if self._jobs.get(slot) is job:
                del self._jobs[slot]

    def cancel(self, job: Job) -> None:
        with suppress(FileNotFoundError):  # its folder is gone: the task was deleted
            cancel_flag(job.work_dir, job.attempt).touch()

    async def kill(self, job: Job) -> None:
        for index, running in list(self._jobs.items()):
            if (running.task_id, running.attempt) == (job.task_id, job.attempt):
                log.warning("killing the worker of slot %d (task %s)", index, job.task_id)
                self._killed.add(index)
                self._slots[index].kill()

    async def _rebuild(self, index: int) -> None:
        self._killed.discard(index)
        old = self._slots[index]
        self._slots[index] = self._new_slot()
        self._pumps[index].cancel()
        self._pumps[index] = asyncio.create_task(self._pump(index))
        await old.close()

    async def _pump(self, index: int) -> None:
        messages = self._slots[index].messages
        while True:
            message = await messages.get()
            try:
                await self._deliver(message)
            except Exception:
                log.exception("could not apply progress message %r", message)

    async def _deliver(self, message: tuple[Any, ...]) -> None:
        kind, task_id, attempt = message[:3]
        if kind == "finished":
            event = self._finished.get((task_id, attempt))
            if event is not None:
                event.set()
            return
        decoded = decode_event(kind, task_id, attempt, message[3:])
        if decoded is None:
            log.warning("unknown progress message kind %r", kind)
        elif self._sink is not None:
            await self._sink(decoded)
