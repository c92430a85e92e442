"""The node's job process: a spawned child that runs one job at a time and keeps its models.

It is the local executor's worker on a node: the same `worker.process.run_job`, the same
progress messages on a multiprocessing queue, plus a ("result", task, attempt, outcome)
message at the end of each job. It watches its parent: a Dask worker killed with SIGKILL runs
no teardown, and its job must not run on without anyone to report to.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from transcriber.worker import process as worker
from transcriber.worker.job import Job
from transcriber.worker.pipeline.types import Cancelled, PipelineError

PARENT_POLL = 0.5


def main(jobs: Any, channel: Any, threads: int, parent: int) -> None:
    """The child's life: take a job, run it, report its outcome; None ends it."""
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    worker.init(channel, threads)
    while True:
        job = jobs.get()
        if job is None:
            return
        channel.put(("result", job.task_id, job.attempt, outcome(job)))


def outcome(job: Job) -> dict[str, Any]:
    """The job's end as plain data (it crosses a pickle and a Dask comm)."""
    try:
        result = worker.run_job(job)
    except PipelineError as exc:
        return {"outcome": "error", "code": exc.code, "message": exc.message, "detail": exc.detail}
    except Cancelled:
        return {"outcome": "cancelled"}
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return {"outcome": "error", "code": "INTERNAL", "message": "", "detail": detail}
    return {
        "outcome": "ok",
        "done_stages": result.done_stages,
        "timings": result.timings,
        "language": result.language,
    }


def _watch_parent(parent: int) -> None:
    # os._exit works from any thread, even while the main thread sits in a long C call.
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    os._exit(1)
