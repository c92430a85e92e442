"""The Dask worker plugin that makes a worker a transcriber node.

Set up when the worker starts: it creates the agent and compares this node's versions with
the ones the coordinator left on the scheduler. Torn down when the worker closes: it kills
the job children, which would otherwise outlive their worker.
"""

from __future__ import annotations

import logging
from typing import Any

from distributed import WorkerPlugin

from transcriber.node.agent import Agent
from transcriber.node.settings import NodeSettings
from transcriber.node.wire import (
    COORDINATOR_KEY,
    PLUGIN_NAME,
    token_digest,
    version_mismatch,
    versions,
)

log = logging.getLogger(__name__)


class NodePlugin(WorkerPlugin):
    name = PLUGIN_NAME

    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.agent: Agent | None = None

    async def setup(self, worker: Any) -> None:
        self.agent = Agent(self.settings)
        theirs = await worker.scheduler.get_metadata(keys=[COORDINATOR_KEY], default=None)
        if isinstance(theirs, dict):
            diff = version_mismatch(versions(), theirs)
            if diff is not None:
                log.error("this node will be refused: its versions differ (%s)", diff)

    def teardown(self, worker: Any) -> None:
        if self.agent is not None:
            self.agent.close()


def node_info(token: str | None, audio: str, worker: Any) -> dict[str, Any]:
    """What a node registers with (Worker startup_information): read by the coordinator."""
    return {"versions": versions(), "token": token_digest(token), "audio": audio}


def refused(reason: str, dask_worker: Any) -> None:
    """Run on a node by the coordinator just before it closes the node."""
    log.error("refused by the coordinator: %s", reason)
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    if plugin is not None and plugin.agent is not None:
        plugin.agent.refused = reason


def stop_job(key: str, kind: str, dask_worker: Any) -> bool:
    """Run on a node by the coordinator (Client.run): the job `key` must stop. False when the
    job has not reached the node's agent (the coordinator then cancels its key)."""
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    return plugin is not None and plugin.agent is not None and plugin.agent.stop(key, kind)
