"""Which executor runs the jobs (--executor): Dask is imported only when it is chosen."""

from __future__ import annotations

from transcriber.config import Config
from transcriber.jobs.engines.executor import Executor
from transcriber.jobs.engines.local import LocalExecutor


def make_executor(config: Config) -> Executor:
    if config.executor == "dask":
        from transcriber.jobs.engines.dask_executor import DaskExecutor

        return DaskExecutor(config)
    return LocalExecutor(config.workers)
