"""Dask settings for a transcriber cluster: fewer wake-ups than Dask's defaults.

Dask's defaults suit workers that run many short tasks; a node runs one long job per slot in a
child process, and its worker only relays. Every periodic wake-up of the worker, the nanny or
the scheduler takes CPU from the job beside it when they share cores (docs/benchmarks.md,
"Dask executor": the 2 nodes there share 2 cores with everything else).
"""

from __future__ import annotations

from typing import Any

# For every Dask server process of ours: the coordinator's scheduler, a node's worker.
SERVER: dict[str, Any] = {
    # The event-loop health check. A loop blocked for longer than admin.tick.limit (3 s) is
    # still logged; it wakes the loop once a second for that instead of 50 times.
    "distributed.admin.tick.interval": "1s",
}

# For a node's worker (`transcriber node`, and the tests' LocalCluster workers).
NODE: dict[str, Any] = {
    **SERVER,
    # The statistical profiler samples the running task's stack 100 times a second. The task
    # is the agent waiting on its child; the profile it would build says nothing useful.
    "distributed.worker.profile.enabled": False,
    # The worker holds no data (a job's result is a small dict), so its memory needs no check
    # 10 times a second; the job's memory is the child's, which Dask does not watch anyway.
    "distributed.worker.memory.monitor-interval": "1s",
}
