"""One job at a time in a spawned worker process, and the channel its progress comes back on.

The local executor's slots (jobs/engines/local.py) and a node's job processes (node/agent.py)
are both this: a single-process `ProcessPoolExecutor` (spawn) whose initializer is
`process.init`, and its own multiprocessing queue, so that a worker killed while it holds its
queue's lock silences no other slot. A node's worker also watches its parent: a Dask worker
killed with SIGKILL runs no teardown, and its job must not run on without anyone to report to.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import suppress
from typing import Any, TypeVar

from transcriber.worker import process
from transcriber.worker.job import Job

log = logging.getLogger(__name__)

T = TypeVar("T")


class WorkerSlot:
    def __init__(self, threads: int, watch_parent: bool = False) -> None:
        mp = multiprocessing.get_context("spawn")
        self.channel: Any = mp.Queue()
        parent = os.getpid() if watch_parent else None
        self.pool = ProcessPoolExecutor(
            1, mp_context=mp, initializer=process.init, initargs=(self.channel, threads, parent)
        )

    def submit(self, fn: Callable[[Job], T], job: Job) -> Future[T]:
        return self.pool.submit(fn, job)

    def receive(self, timeout: float) -> tuple[Any, ...] | None:
        """The next progress message; None when none came in time, or when what came is not a
        message (a killed worker can leave a cut or garbled one in the pipe: logged, skipped).
        Raises OSError once the channel is closed."""
        try:
            message = self.channel.get(timeout=timeout)
        except queue.Empty:
            return None
        except OSError:
            raise
        except Exception:  # a truncated pickle raises EOFError too: not the end
            log.warning("unreadable progress message", exc_info=True)
            return None
        if isinstance(message, tuple) and len(message) >= 3:
            return message
        log.warning("progress message of the wrong shape: %.200r", message)
        return None

    def _processes(self) -> list[Any]:
        return list((getattr(self.pool, "_processes", None) or {}).values())

    @property
    def broken(self) -> bool:
        """Its worker died (between jobs too): a fresh slot is needed."""
        return bool(getattr(self.pool, "_broken", False))

    @property
    def pid(self) -> int | None:
        processes = self._processes()
        return processes[0].pid if processes else None

    def exitcode(self) -> int | None:
        processes = self._processes()
        return processes[0].exitcode if processes else None

    def kill(self) -> None:
        for worker in self._processes():
            with suppress(Exception):
                worker.kill()

    def close(self) -> None:
        """Stop the worker now: a job may run for many minutes, shutdown must not wait."""
        workers = self._processes()
        for worker in workers:
            with suppress(Exception):
                worker.terminate()
        for worker in workers:
            with suppress(Exception):
                worker.join(5)
        # With its worker gone the pool sees itself broken and its threads and queues close.
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.channel.close()
        self.channel.cancel_join_thread()
