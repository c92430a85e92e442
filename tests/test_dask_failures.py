"""The dask executor when things die: a job's child, a node's Dask worker, the coordinator.

Real LocalCluster worker processes, real SIGKILLs; the coordinator is a real server on a real
SQLite file, stopped and started again on the same data folder.
"""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from transcriber.web.server import create_app

from .conftest import ClientFactory, plumbing_config
from .daskcluster import alive, dask_overrides, executor_of, node_cluster, placed_pid, until
from .test_dask import reach, submit


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def test_killed_child_fails_worker_crashed_and_the_node_takes_the_next_job(
    tmp_path: Path, make_client: ClientFactory, wav_bytes: bytes
) -> None:
    async with node_cluster(tmp_path, workers=1) as cluster:
        client = await make_client(**dask_overrides(cluster, plumbing_stage_seconds=3.0))
        executor = executor_of(client)
        task_id = await submit(client, wav_bytes)
        await reach(client, task_id, "aligning")
        node, pid = await until(functools.partial(placed_pid, executor, task_id))
        os.kill(pid, signal.SIGKILL)
        failed = await reach(client, task_id, "failed")
        assert failed["error"]["code"] == "WORKER_CRASHED"
        assert "exit code -9" in failed["error"]["detail"]
        second = await submit(client, wav_bytes)
        await until(functools.partial(placed_pid, executor, second))
        again, new_pid = await until(functools.partial(placed_pid, executor, second))
        done = await reach(client, second, "complete")
        await client.close()
    assert again == node and new_pid != pid and done["error"] is None


async def test_killed_dask_worker_requeues_its_job_by_the_attempt_rules(
    tmp_path: Path, make_client: ClientFactory, wav_bytes: bytes
) -> None:
    async with node_cluster(tmp_path) as cluster:
        client = await make_client(**dask_overrides(cluster, plumbing_stage_seconds=3.0))
        executor = executor_of(client)
        await until(lambda: len(executor.nodes.admitted()) == 2, what="both nodes admitted")
        task_id = await submit(client, wav_bytes)
        await reach(client, task_id, "aligning")
        node, child = await until(functools.partial(placed_pid, executor, task_id))
        os.kill(parent_of(child), signal.SIGKILL)  # the node's Dask worker process
        # Its job's child does not outlive it, though no teardown ran.
        await until(lambda: not alive(child), what="the orphaned child to exit")
        done = await reach(client, task_id, "complete")
        await client.close()
    # Resumed (attempt 2) after the stage the lost node had finished, not from the start.
    assert done["attempt"] == 2 and done["error"] is None
    assert node not in executor.nodes.admitted()


async def test_coordinator_restart_stops_the_orphan_and_resumes_the_task(
    tmp_path: Path, wav_bytes: bytes
) -> None:
    async with node_cluster(tmp_path, workers=1) as cluster:
        config = plumbing_config(tmp_path, **dask_overrides(cluster, plumbing_stage_seconds=3.0))
        first: TestClient[Any, Any] = TestClient(TestServer(create_app(config)))
        await first.start_server()
        task_id = await submit(first, wav_bytes)
        await reach(first, task_id, "aligning")
        _, child = await until(functools.partial(placed_pid, executor_of(first), task_id))
        await first.close()
        # The node saw its key abandoned and killed the job: no orphan runs on.
        await until(lambda: not alive(child), what="the orphan to be killed")
        second: TestClient[Any, Any] = TestClient(TestServer(create_app(config)))
        await second.start_server()
        done = await reach(second, task_id, "complete")
        await second.close()
    assert done["attempt"] == 2 and done["error"] is None
    transcribed = (config.files_dir / task_id / "transcribing.json").stat().st_mtime
    aligned = (config.files_dir / task_id / "aligning.json").stat().st_mtime
    assert transcribed < aligned  # the first attempt's transcript was kept, not redone
