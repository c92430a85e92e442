"""What the coordinator knows of each job it runs, and the limits its watchdog enforces.

A job is tracked from the moment its task leaves the queue, before anything is awaited, so
a cancel that lands between the dequeue and the executor's `run` still finds it. A stop has
a reason: a cancel or a delete asks the worker first and kills it after the grace period; a
job past a limit (no progress for the stall timeout, or running past the job timeout) is
killed at once, as it is not listening.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from enum import Enum

from transcriber.worker.job import Job

# A job's time limit when none is configured: generous enough for a CPU run of every stage
# (about 0.3 x real time here), so that only a job that is truly stuck reaches it.
BASE_JOB_SECONDS = 1800.0
JOB_SECONDS_PER_AUDIO_SECOND = 3.0


def job_limit(configured: float | None, duration: float | None) -> float:
    """Seconds a job may run: the configured limit, else one from the audio's duration."""
    if configured is not None:
        return configured
    return BASE_JOB_SECONDS + JOB_SECONDS_PER_AUDIO_SECOND * (duration or 0.0)


class Stop(Enum):
    CANCEL = "cancel"  # a cancel or a delete: the task is already marked
    TIMEOUT = "timeout"  # the watchdog: the task fails JOB_TIMEOUT


@dataclass(eq=False)  # one per attempt, told apart by identity (kept in a set)
class Running:
    task_id: str
    slot: int
    job: Job | None = None
    started: float = field(default_factory=time.monotonic)
    heard: float = field(default_factory=time.monotonic)
    limit: float = math.inf
    stop: Stop | None = None
    why: str = ""
    kill_at: float = math.inf
    killed: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def submitted(self, job: Job, limit: float) -> None:
        self.job, self.limit = job, limit
        self.started = self.heard = time.monotonic()

    def ask_stop(self, stop: Stop, why: str, grace: float) -> bool:
        """Record the first reason to stop; False when one was recorded already."""
        if self.stop is not None:
            return False
        self.stop, self.why = stop, why
        self.kill_at = time.monotonic() + grace
        return True

    def overdue(self, now: float, stall: float) -> str | None:
        """Which limit the job has passed, in words for the error's detail; None if none."""
        if self.job is None or self.stop is not None:
            return None
        quiet, ran = now - self.heard, now - self.started
        if quiet > stall:
            return f"no progress for {quiet:.0f} s (the stall timeout is {stall:g} s)"
        if ran > self.limit:
            return f"still running after {ran:.0f} s (the job timeout is {self.limit:g} s)"
        return None

    def due_for_kill(self, now: float) -> bool:
        return self.job is not None and not self.killed and now >= self.kill_at
