"""The executor interface: what the coordinator needs from an engine that runs jobs.

An executor owns a fixed number of slots and runs one job per slot at a time. The coordinator
(jobs/runner.py) keeps the queue, attempts and task state; an executor only runs what it is
handed, reports the job's progress as events, and returns its result or raises. The local
executor (jobs/local.py) runs each slot in its own worker process; another engine (a cluster)
implements the same methods. docs/architecture.md describes the contract.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from transcriber.worker.job import Job, JobResult


@dataclass(frozen=True)
class Progress:
    """A job moved within a stage (or entered it, with stage_progress 0)."""

    task_id: str
    attempt: int
    stage: str
    stage_progress: int
    detail: str


@dataclass(frozen=True)
class StageDone:
    """A stage's output is saved: a later attempt resumes after it."""

    task_id: str
    attempt: int
    stage: str
    seconds: float
    language: str | None


@dataclass(frozen=True)
class Alive:
    """The job is working (its stage called back) but has nothing new to show: the watchdog's
    proof of life between progress updates."""

    task_id: str
    attempt: int


@dataclass(frozen=True)
class Segments:
    """Text the transcribing stage decoded: new segments of one piece of the audio, and with
    `done` the word that the piece has no more (a resumed run starts after it)."""

    task_id: str
    attempt: int
    piece: int
    segments: list[dict[str, Any]]
    done: bool
    language: str | None


Event = Progress | StageDone | Alive | Segments
EventSink = Callable[[Event], Awaitable[None]]


def decode_event(kind: str, task_id: str, attempt: int, rest: Sequence[Any]) -> Event | None:
    """A worker's progress message (the tuples worker/process.py sends) as an Event; None for
    a kind this version does not know."""
    if kind == "progress":
        stage, pct, detail = rest
        return Progress(task_id, attempt, stage, int(pct), str(detail))
    if kind == "stage_done":
        stage, seconds, language = rest
        return StageDone(task_id, attempt, stage, float(seconds), language)
    if kind == "alive":
        return Alive(task_id, attempt)
    if kind == "segments":
        piece, segments, done, language = rest
        return Segments(task_id, attempt, int(piece), list(segments), bool(done), language)
    return None


class WorkerLost(Exception):
    """The process (or machine) running the job died: the job's outcome is unknown."""


class NodeLost(WorkerLost):
    """The machine running the job left the cluster (the dask executor): like a restart, the
    job may resume elsewhere from its last saved stage, by the same attempt rules."""


class Executor(Protocol):
    """Runs jobs; see the module docstring.

    `run` returns only after every event of the job has been passed to the sink, so the
    coordinator applies all progress before the final state. It raises the worker's
    PipelineError, Cancelled after a cancel, or WorkerLost (also after `kill`).
    """

    @property
    def slots(self) -> int: ...

    async def start(self, sink: EventSink) -> None: ...

    async def stop(self) -> None: ...

    async def run(self, slot: int, job: Job) -> JobResult: ...

    def cancel(self, job: Job) -> None:
        """Ask the job to stop at its next progress check; `run` then raises Cancelled.

        May come before `run` was called for the job: the job then stops as it starts.
        """

    async def kill(self, job: Job) -> None:
        """Stop the job now, whatever it is doing: its worker is killed and its slot gets a
        fresh one before the slot runs anything else; `run` then raises WorkerLost. Does
        nothing when the job is not running."""


@runtime_checkable
class Limited(Protocol):
    """An executor whose places come and go (a cluster's machines): the coordinator takes no
    more jobs from the queue than `room()` says it can run now. Without it: `slots`.

    `watch_room(callback)` registers a plain function the executor calls (on the event loop)
    whenever `room()` may have grown, so that waiting slot loops wake instead of polling."""

    def room(self) -> int: ...

    def watch_room(self, callback: Callable[[], None]) -> None: ...


__all__ = [
    "Alive",
    "Event",
    "EventSink",
    "Executor",
    "Limited",
    "NodeLost",
    "Progress",
    "Segments",
    "StageDone",
    "WorkerLost",
    "decode_event",
]
