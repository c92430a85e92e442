"""The dask executor: jobs run on `transcriber node` agents through Dask distributed.

The coordinator keeps the queue (jobs/runner.py) and submits a job only while a node has a
free slot, placing it on that node itself: Dask's own placement of resource-restricted tasks
can pile them onto busy workers, and after a cancel it may take a worker for free while the
old job still runs. A node is admitted once its token and versions check out (wire.py).
Progress arrives on a Dask event topic and is applied in order by one pump task; a cancel or
kill is told to the job's node at once (Client.run) and kept as a distributed.Event, which the
node reads as the job starts, for a job that has not reached its node yet. A node that
vanishes fails its jobs with NodeLost, which the coordinator treats like a restart of the job
(requeue or fail).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import distributed

from transcriber.config import Config
from transcriber.jobs.dask_nodes import Nodes
from transcriber.jobs.executor import (
    EventSink,
    NodeLost,
    WorkerLost,
    decode_event,
)
from transcriber.node.agent import run_on_node
from transcriber.node.plugin import stop_job
from transcriber.node.tls import security
from transcriber.node.tuning import SERVER
from transcriber.node.wire import (
    COORDINATOR_KEY,
    PROGRESS_TOPIC,
    RESOURCE,
    job_key,
    stop_event,
    versions,
)
from transcriber.worker.pipeline.types import Cancelled, PipelineError
from transcriber.worker.process import Job, JobResult

log = logging.getLogger(__name__)
# distributed is only partly typed: its untyped calls go through Any.
dd: Any = distributed

# How long run() waits, after the job's result, for its last progress events to arrive.
FINISH_WAIT = 10.0


@dataclass
class _Placed:
    job: Job
    address: str
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

    @property
    def slots(self) -> int:
        return self._config.max_jobs

    def room(self) -> int:
        """Slots on admitted nodes: the coordinator runs no more jobs than this at once."""
        return self._nodes.slots() if self._nodes is not None else 0

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
        self._nodes = Nodes(self._client, c.node_token, self._node_gone)
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
        address = self.nodes.take()
        if address is None:
            raise NodeLost("no node has a free slot")
        key = (job.task_id, job.attempt)
        placed = self._placed[key] = _Placed(job, address)
        try:
            outcome = await self._submit(placed)
            with suppress(TimeoutError):
                await asyncio.wait_for(placed.finished.wait(), FINISH_WAIT)
        finally:
            del self._placed[key]
            self.nodes.give_back(address)
            await self._clear_signals(job)
        return _result(outcome)

    async def _submit(self, placed: _Placed) -> dict[str, Any]:
        job = placed.job
        future = self._client.submit(
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
            try:
                outcome: dict[str, Any] = result.result()
            except Exception as exc:  # KilledWorker and kin: the worker died under it
                self.nodes.lose(placed.address)  # before the requeued job looks for a node
                raise NodeLost(f"node {placed.address}: {type(exc).__name__}: {exc}") from exc
            return outcome
        finally:
            for waiting in (result, lost):
                waiting.cancel()
            await self._client.cancel([future])

    def cancel(self, job: Job) -> None:
        self._signal(job, "cancel")

    async def kill(self, job: Job) -> None:
        if (job.task_id, job.attempt) in self._placed:
            await self._set(job, "kill")

    def _signal(self, job: Job, kind: str) -> None:
        task = asyncio.create_task(self._set(job, kind))
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)

    async def _set(self, job: Job, kind: str) -> None:
        placed = self._placed.get((job.task_id, job.attempt))
        try:
            await dd.Event(stop_event(job.task_id, job.attempt, kind), client=self._client).set()
            if placed is not None:
                key = job_key(job.task_id, job.attempt)
                await self._client.run(stop_job, key, kind, workers=[placed.address])
        except Exception:
            log.exception("could not signal %s to task %s", kind, job.task_id)

    async def _clear_signals(self, job: Job) -> None:
        for kind in ("cancel", "kill"):
            name = stop_event(job.task_id, job.attempt, kind)
            with suppress(Exception):
                await dd.Event(name, client=self._client).clear()

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
