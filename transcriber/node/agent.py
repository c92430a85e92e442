"""The node agent: runs the coordinator's jobs in spawned children and relays their progress.

One child per slot, kept between jobs so its models stay loaded. A job is a Dask task
(`run_on_node`) whose thread hands the job to a child and follows it: progress goes to the
coordinator through the worker's event log; a cancel (then the job's own cancel flag file,
then a kill after the grace period) or a kill comes from the coordinator through Client.run
(plugin.stop_job, then `Agent.stop`, which says whether the job was here to hear it; if not,
the coordinator cancels its key). Nothing is polled over the network while a job runs: each
poll would take CPU from the job. A key that turns cancelled in the worker's state means the
coordinator gave it up (or is gone): the job is an orphan and is killed, so that it can be
resumed elsewhere. Whatever goes wrong with one job here (its audio cut off mid-download, a
stage that could not be sent back) is that job's outcome, an error: the node and its other
jobs run on.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import shutil
import threading
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from typing import Any

import distributed

from transcriber.node import child, fetch
from transcriber.node.settings import NodeSettings
from transcriber.node.wire import PLUGIN_NAME, PROGRESS_TOPIC
from transcriber.worker.job import Job, cancel_flag
from transcriber.worker.slot import WorkerSlot

log = logging.getLogger(__name__)
# distributed is only partly typed: its untyped calls go through Any.
dd: Any = distributed

# How often a running job looks for a stop: a cancel reaches the child within about this.
CHECK_EVERY = 0.2
# How long the progress a job sent before it returned may take to arrive after its outcome.
FINISH_WAIT = 10.0
# States in which the worker no longer wants the task's result: its client is gone.
ABANDONED = frozenset({"cancelled", "released", "forgotten"})


class Agent:
    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.refused: str | None = None
        self._children: list[WorkerSlot | None] = [None] * settings.slots
        self._free: queue.Queue[int] = queue.Queue()
        for slot in range(settings.slots):
            self._free.put(slot)
        self._watches: dict[str, _StopWatch] = {}

    def run(self, job: Job, grace: float, key: str, dask_worker: Any) -> dict[str, Any]:
        # Registered first: from here on a stop finds the job (and `stop` says so).
        watch = self._watches[key] = _StopWatch(key, dask_worker, grace)
        slot = self._free.get()
        try:
            return self._run_in(slot, job, watch, dask_worker)
        except Exception as exc:  # this job's failure alone, never its node's
            log.exception("task %s attempt %d failed on this node", job.task_id, job.attempt)
            self._discard(slot)  # it may hold the job, and nobody would follow it
            return _error(f"the node lost hold of the job: {type(exc).__name__}: {exc}")
        finally:
            # After its last progress event, whatever the outcome: the coordinator waits for it.
            dask_worker.log_event(PROGRESS_TOPIC, ["finished", job.task_id, job.attempt])
            del self._watches[key]
            self._free.put(slot)

    def stop(self, key: str, kind: str) -> bool:
        """The coordinator's word that the job `key` must stop: "cancel" or "kill". False when
        the job is not here (not yet, or no more)."""
        watch = self._watches.get(key)
        if watch is not None:
            watch.heard(kind)
        return watch is not None

    def close(self) -> None:
        """Kill every child: the worker is going and a job must not outlive it."""
        for slot in range(len(self._children)):
            self._discard(slot)

    def _discard(self, slot: int) -> None:
        running = self._children[slot]
        if running is not None:
            running.kill()
            running.close()
            self._children[slot] = None

    def _child(self, slot: int) -> WorkerSlot:
        current = self._children[slot]
        if current is not None and current.broken:
            self._discard(slot)
            current = None
        if current is None:
            current = self._children[slot] = WorkerSlot(self.settings.threads, watch_parent=True)
        return current

    def _run_in(self, slot: int, job: Job, watch: _StopWatch, w: Any) -> dict[str, Any]:
        try:
            local = self._localize(job)
        except Exception as exc:  # OSError, urllib's, and a cut response (IncompleteRead)
            return _error(f"could not fetch the task's files: {type(exc).__name__}: {exc}")
        stopped = watch.before_start()
        if stopped is not None:
            return stopped
        running = self._child(slot)
        future = running.submit(child.outcome, local)
        log.info("task %s attempt %d: running in process %s", job.task_id, job.attempt, running.pid)
        w.log_event(PROGRESS_TOPIC, ["started", job.task_id, job.attempt, running.pid])
        result = self._follow(slot, running, future, local, watch, w)
        if self.settings.audio == "http" and result["outcome"] != "lost":
            shutil.rmtree(local.work_dir, ignore_errors=True)
        return result

    def _follow(
        self,
        slot: int,
        running: WorkerSlot,
        future: Future[dict[str, Any]],
        job: Job,
        watch: _StopWatch,
        w: Any,
    ) -> dict[str, Any]:
        finished = False
        ended_at: float | None = None
        while True:
            message = running.receive(CHECK_EVERY)
            if message is not None and message[0] == "finished":
                finished = True
            elif message is not None:
                try:
                    self._relay(job, message, w)
                except Exception as exc:  # urllib's errors, a cut answer, a refused upload
                    self._discard(slot)
                    return _error(f"could not send a stage's output: {type(exc).__name__}: {exc}")
            if future.done():
                # Progress travels on the channel: all of it is relayed before the outcome.
                ended_at = ended_at or time.monotonic()
                if finished or time.monotonic() - ended_at > FINISH_WAIT:
                    return self._outcome(slot, running, future)
                continue
            action = watch.check()
            if action == "cancel":
                with suppress(FileNotFoundError):  # a deleted task's folder
                    cancel_flag(job.work_dir, job.attempt).touch()
            elif action is not None:
                log.warning("task %s: killing its process (%s)", job.task_id, action)
                self._discard(slot)
                return _lost(action)

    def _outcome(
        self, slot: int, running: WorkerSlot, future: Future[dict[str, Any]]
    ) -> dict[str, Any]:
        try:
            return future.result()
        except BrokenProcessPool:
            code = running.exitcode()
            self._discard(slot)
            return _lost(f"the job's process died (exit code {code})")

    def _relay(self, job: Job, message: tuple[Any, ...], w: Any) -> None:
        kind = message[0]
        if kind == "stage_done" and self.settings.audio == "http":
            # Saved on the coordinator before it hears of it: a resume starts after it.
            fetch.upload_stage(self.settings, job, message[3])
        w.log_event(PROGRESS_TOPIC, list(message))

    def _localize(self, job: Job) -> Job:
        """The job with this node's device, models and token, and (http) local files."""
        s = self.settings
        job = dataclasses.replace(
            job, device=s.device, models_dir=s.models_dir, hf_token=s.hf_token
        )
        if s.audio != "http":
            return job
        work_dir = s.cache_dir / "tasks" / job.task_id
        audio = work_dir / job.audio_path.name
        fetch.fetch_inputs(s, job, work_dir, audio)
        return dataclasses.replace(job, audio_path=audio, work_dir=work_dir)


class _StopWatch:
    """Looks for a reason to stop the job: a cancel, a kill, or a coordinator gone."""

    def __init__(self, key: str, w: Any, grace: float) -> None:
        self.key, self.w, self.grace = key, w, grace
        # Set from the worker's event loop (Agent.stop), read in the job's thread.
        self.cancel = threading.Event()
        self.kill = threading.Event()
        self.kill_at: float | None = None
        self._next = 0.0

    def before_start(self) -> dict[str, Any] | None:
        """The job's outcome when it was stopped before its child got it (while its files
        were fetched, or its key was given up before it registered); None to start it."""
        if self.kill.is_set() or self._state() in ABANDONED:
            return _lost("stopped before it started")
        if self.cancel.is_set():
            return {"outcome": "cancelled"}
        return None

    def _state(self) -> str:
        return str(getattr(self.w.state.tasks.get(self.key), "state", "forgotten"))

    def heard(self, kind: str) -> None:
        (self.kill if kind == "kill" else self.cancel).set()

    def check(self) -> str | None:
        """None, "cancel" (once: raise the flag) or the reason to kill now."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + CHECK_EVERY
        if self._state() in ABANDONED:
            return "orphaned: the coordinator that submitted it is gone"
        if self.kill_at is not None and now >= self.kill_at:
            return f"still running {self.grace:g} s after the cancel"
        if self.kill.is_set():
            return "killed by the coordinator"
        if self.kill_at is None and self.cancel.is_set():
            self.kill_at = now + self.grace
            return "cancel"
        return None


def _lost(detail: str) -> dict[str, Any]:
    return {"outcome": "lost", "detail": detail}


def _error(detail: str) -> dict[str, Any]:
    return {"outcome": "error", "code": "INTERNAL", "message": "", "detail": detail}


def run_on_node(job: Job, grace: float) -> dict[str, Any]:
    """The Dask task: run `job` on this worker's agent and return its outcome as plain data."""
    w = dd.get_worker()
    agent: Agent = w.plugins[PLUGIN_NAME].agent
    return agent.run(job, grace, str(dd.worker.thread_state.key), w)
