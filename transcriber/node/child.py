"""What a node's job process runs: the local executor's `worker.process.run_job`, in the same
kind of worker slot (worker/slot.py, which also watches the Dask worker that started it), with
its end turned into plain data that crosses a pickle and a Dask comm.
"""

from __future__ import annotations

from typing import Any

from transcriber.worker import process as worker
from transcriber.worker.job import Job
from transcriber.worker.pipeline.types import Cancelled, PipelineError


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
