"""The dask executor: jobs run on `transcriber node` agents through Dask distributed.

The coordinator keeps the queue (jobs/runner.py) and submits a job only while a node has a
free slot, placing it on that node itself: Dask's own placement of resource-restricted tasks
can pile them onto busy workers, and after a cancel it may take a worker for free while the
old job still runs. A node is admitted once its token and versions check out (wire.py); the
slot loops are woken (`watch_room`) when one is. Progress arrives on a Dask event topic and
is applied in order by one pump task. A cancel or kill is told to the job's node at once
(Client.run); a job not yet on its node has its Dask task cancelled instead, and one
cancelled before `run` is never submitted: no stop is left behind on the scheduler. A job's
own failure (say its node could not fetch the audio) fails that job alone; only a node that
leaves the cluster (its worker died, or the scheduler no longer lists it) fails its jobs with
NodeLost, which the coordinator treats like a restart of the job (requeue or fail).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import distributed

from transcriber.config import Config
from transcriber.jobs.engines.dask_nodes import Nodes
from transcriber.jobs.engines.executor import (
    EventSink,
    NodeLost,
    WorkerLost,
    decode_event,
)
from transcriber.node.agent import run_on_node
from transcriber.node.guard import guard_scheduler
from transcriber.node.plugin import stop_job
from transcriber.node.tls import security
from transcriber.node.tuning import SERVER
from transcriber.node.wire import COORDINATOR_KEY, PROGRESS_TOPIC, RESOURCE, job_key, versions
from transcriber.worker.job import Job, JobResult
from transcriber.worker.pipeline.types import Cancelled, PipelineError

log = logging.getLogger(__name__)
# distributed is only partly typed: its untyped calls go through Any.
dd: Any = distributed

# How long run() waits, after the job's result, for its last progress events to arrive.
FINISH_WAIT = 10.0
# How long a cancel that came before `run` is kept for it: the coordinator calls `run` right
# after it builds a job, or not at all, so an older one is only memory.
EARLY_KEEP = 600.0


@dataclass
class _Placed:
    job: Job
    address: str
    future: Any = None
    stop: str | None = None  # "cancel" or "kill", once the coordinator asked
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    pid: int | None = None


class DaskExecutor:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._scheduler: Any = None
        self._client: Any = None
        self._nodes: Nodes | None = None
        self._placed: dict[tuple[str, int], _Placed] = {}
        self._inbox: asyncio.Queue[list[Any]] = asyncio.Queue()
        self._sink: EventSink | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._signals: set[asyncio.Task[None]] = set()
        self._early: dict[tuple[str, int], float] = {}
        self._room_watchers: list[Callable[[], None]] = []

    @property
    def slots(self) -> int:
        return self._config.max_jobs

    def room(self) -> int:
        """Slots on admitted nodes: the coordinator runs no more jobs than this at once."""
        return self._nodes.slots() if self._nodes is not None else 0

    def watch_room(self, callback: Callable[[], None]) -> None:
        """`callback` is called on the event loop whenever `room()` may have grown."""
        self._room_watchers.append(callback)

    def _room_grew(self) -> None:
        for callback in list(self._room_watchers):
            try:
                callback()
            except Exception:
                log.exception("a watcher of the executor's room failed")

    @property
    def nodes(self) -> Nodes:
        assert self._nodes is not None, "not started"
        return self._nodes

    def running_on(self, task_id: str) -> tuple[str, int | None] | None:
        """The node address and job process id of the task's running attempt (tests, logs)."""
        for (placed_id, _), placed in self._placed.items():
            if placed_id == task_id:
                return placed.address, placed.pid
        return None

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        c = self._config
        sec = security(c.tls_dir, "coordinator")
        address = c.scheduler or await self._host_scheduler(sec)
        self._client = await dd.Client(address, security=sec, asynchronous=True)
        await self._client.set_metadata(COORDINATOR_KEY, versions())
        self._client.subscribe_topic(PROGRESS_TOPIC, self._heard)
        self._nodes = Nodes(self._client, c.node_token, self._node_gone, self._room_grew)
        await self._nodes.refresh()
        self._tasks = [asyncio.create_task(self._pump()), asyncio.create_task(self._nodes.watch())]

    async def _host_scheduler(self, sec: Any) -> str:
        import dask
        from distributed import Scheduler

        c = self._config
        protocol = "tcp" if c.tls_dir is None else "tls"
        with dask.config.set(SERVER):  # read when the scheduler is made, not after
            self._scheduler = Scheduler(
                host=c.scheduler_host,
                port=c.scheduler_port,
                protocol=protocol,
                security=sec,
                dashboard=False,
                # Its HTTP server (health, metrics) stays on loopback, on a free port.
                dashboard_address="127.0.0.1:0",
                # A job is never run twice by Dask: the coordinator decides (NodeLost).
                allowed_failures=0,
            )
        if c.tls_dir is not None:  # without TLS no peer has a role: loopback only (config.py)
            guard_scheduler(self._scheduler)
        await self._scheduler
        log.info("Dask scheduler listening on %s", self._scheduler.address)
        return str(self._scheduler.address)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            # Closing the client abandons its running keys: each node kills its orphans.
            await self._client.close()
        if self._scheduler is not None:
            await self._scheduler.close()

    async def run(self, slot: int, job: Job) -> JobResult:
        key = (job.task_id, job.attempt)
        if self._early.pop(key, None) is not None:
            raise Cancelled("cancelled before it started")
        address = self.nodes.take()
        if address is None:
            raise NodeLost("no node has a free slot")
        placed = self._placed[key] = _Placed(job, address)
        try:
            outcome = await self._submit(placed)
            with suppress(TimeoutError):
                await asyncio.wait_for(placed.finished.wait(), FINISH_WAIT)
        finally:
            del self._placed[key]
            self.nodes.give_back(address)
        return _result(outcome)

    async def _submit(self, placed: _Placed) -> dict[str, Any]:
        job = placed.job
        future = placed.future = self._client.submit(
            run_on_node,
            dataclasses.replace(job, hf_token=None),  # the node uses its own hub token
            self._config.cancel_grace,
            key=job_key(job.task_id, job.attempt),
            workers=[placed.address],
            allow_other_workers=False,
            resources={RESOURCE: 1},
            pure=False,
            retries=0,
        )
        result = asyncio.ensure_future(_outcome(future))
        lost = asyncio.ensure_future(self.nodes.lost(placed.address))
        try:
            await asyncio.wait({result, lost}, return_when=asyncio.FIRST_COMPLETED)
            if not result.done():
                raise NodeLost(f"node {placed.address} was lost while it ran the job")
            return self._judge(placed, result)
        finally:
            for waiting in (result, lost):
                waiting.cancel()
            await self._client.cancel([future])

    def _judge(self, placed: _Placed, result: asyncio.Future[dict[str, Any]]) -> dict[str, Any]:
        """The node's outcome, or what the end of the job's Dask task means for the job."""
        try:
            return result.result()
        except dd.KilledWorker as exc:  # the node's Dask worker died while it held the job
            self.nodes.lose(placed.address)  # before the requeued job looks for a node
            raise NodeLost(f"node {placed.address}: {type(exc).__name__}: {exc}") from exc
        except dd.client.FutureCancelledError as exc:
            if placed.stop == "cancel":
                raise Cancelled("cancelled before it reached its node") from exc
            if placed.stop == "kill":
                raise WorkerLost("killed before it reached its node") from exc
            # Not cancelled from here: the scheduler let go of it (its connection was lost).
            raise NodeLost(f"the scheduler dropped the job: {exc}") from exc
        except Exception as exc:  # the job's own failure: its node and its other jobs run on
            detail = f"on node {placed.address}: {type(exc).__name__}: {exc}"
            raise PipelineError("INTERNAL", "", detail) from exc

    def cancel(self, job: Job) -> None:
        key = (job.task_id, job.attempt)
        placed = self._placed.get(key)
        if placed is None:  # `run` has not begun: it will not submit the job
            now = time.monotonic()
            self._early = {k: t for k, t in self._early.items() if now - t < EARLY_KEEP}
            self._early[key] = now
            return
        task = asyncio.create_task(self._stop(placed, "cancel"))
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)

    async def kill(self, job: Job) -> None:
        if (placed := self._placed.get((job.task_id, job.attempt))) is not None:
            await self._stop(placed, "kill")

    async def _stop(self, placed: _Placed, kind: str) -> None:
        if placed.stop != "kill":
            placed.stop = kind
        task_id, address = placed.job.task_id, placed.address
        try:
            key = job_key(task_id, placed.job.attempt)
            answers = await self._client.run(stop_job, key, kind, workers=[address])
            if answers.get(address):
                return  # the node has it: it stops it
        except Exception:
            log.exception("could not tell node %s to %s task %s", address, kind, task_id)
        # Not on its node yet: its Dask task is cancelled, so that it never starts there (a
        # job just starting sees its key given up, and its node kills it as an orphan).
        try:
            await self._client.cancel([placed.future])
        except Exception:
            log.exception("could not cancel the Dask task of task %s", task_id)

    def _node_gone(self, address: str) -> None:
        for placed in self._placed.values():
            if placed.address == address:
                log.warning("task %s: its node %s is gone", placed.job.task_id, address)

    # -- progress --------------------------------------------------------------------------

    def _heard(self, event: tuple[float, Any]) -> None:
        # Called in the client's message loop: queued, not awaited, so a slow sink (SQLite)
        # never holds up the client's other messages.
        self._inbox.put_nowait(event[1])

    async def _pump(self) -> None:
        while True:
            message = await self._inbox.get()
            try:
                await self._deliver(message)
            except Exception:
                log.exception("could not apply progress message %r", message)

    async def _deliver(self, message: list[Any]) -> None:
        kind, task_id, attempt = message[:3]
        placed = self._placed.get((task_id, attempt))
        if kind == "started" and placed is not None:
            placed.pid = int(message[3])
        elif kind == "finished" and placed is not None:
            placed.finished.set()
        else:
            event = decode_event(kind, task_id, attempt, message[3:])
            if event is not None and self._sink is not None:
                await self._sink(event)


async def _outcome(future: Any) -> dict[str, Any]:
    outcome: dict[str, Any] = await future
    return outcome


def _result(outcome: dict[str, Any]) -> JobResult:
    kind = outcome.get("outcome")
    if kind == "ok":
        return JobResult(outcome["done_stages"], outcome["timings"], outcome["language"])
    if kind == "cancelled":
        raise Cancelled("cancelled")
    if kind == "error":
        raise PipelineError(outcome["code"], outcome["message"], outcome["detail"])
    raise WorkerLost(str(outcome.get("detail", "the job's process was lost")))
