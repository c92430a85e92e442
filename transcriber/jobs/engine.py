"""Which executor runs the jobs (--executor): Dask is imported only when it is chosen."""

from __future__ import annotations

from transcriber.config import Config
from transcriber.jobs.executor import Executor
from transcriber.jobs.local import LocalExecutor


def make_executor(config: Config) -> Executor:
    if config.executor == "dask":
        from transcriber.jobs.dask_executor import DaskExecutor

        return DaskExecutor(config)
    return LocalExecutor(config.workers)
