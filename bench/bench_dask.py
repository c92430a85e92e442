"""The dask executor, measured side by side (docs/benchmarks.md, "Dask executor").

1. Throughput: 8 jobs of a CPU-bound plumbing pipeline (TRANSCRIBER_PLUMBING_BUSY: each step
   uses a core) on 1 node of 1 slot, then on 2 nodes of 1 slot, alternating, ROUNDS times.
   The nodes are LocalCluster worker processes with the node plugin, as in the tests. Each
   node first runs one job, not timed, so its job process is up (--cold times that start too);
   the bench waits for the jobs by long-polling, so its own requests take no CPU from them.
2. Progress latency, same run: a timestamped message from a job process to the coordinator's
   event loop, through the local executor's path (a spawned pool worker's multiprocessing
   queue, its reader thread) and through Dask's (worker.log_event on a node, the scheduler,
   the coordinator client's subscribe_topic handler). What follows both (Tasks.update, the
   hub, the WebSocket) is the same code either way.

Usage: .venv/bin/python bench/bench_dask.py [--jobs 8] [--stage-seconds 0.5] [--rounds 2] [--cold]
Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["TRANSCRIBER_PLUMBING_BUSY"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import TestClient, TestServer
from distributed import Client, LocalCluster, get_worker

from tests.conftest import plumbing_config, tone_wav
from tests.daskcluster import TOKEN, node_cluster
from transcriber.jobs.engines import local
from transcriber.node.wire import RESOURCE
from transcriber.web.keys import RUNNER
from transcriber.web.server import create_app
from transcriber.worker import process as worker

PROBES = 200
PROBE_GAP = 0.01


async def run_jobs(
    folder: Path, cluster: LocalCluster, nodes: int, args: argparse.Namespace
) -> float:
    config = plumbing_config(
        folder,
        executor="dask",
        scheduler=cluster.scheduler_address,
        insecure=True,
        node_token=TOKEN,
        max_jobs=4,
        plumbing_stage_seconds=args.stage_seconds,
    )
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(config)))
    await client.start_server()
    executor: Any = client.app[RUNNER].executor
    while len(executor.nodes.admitted()) < nodes:
        await asyncio.sleep(0.05)
    wav = tone_wav(2.0)
    if not args.cold:
        # One job per node first, not timed: each node's job process is up and has imported
        # the pipeline, as on a node that has run a job before (nodes run for days).
        await ended(client, [await submit(client, wav) for _ in range(nodes)])
    start = time.monotonic()
    tasks = await ended(client, [await submit(client, wav) for _ in range(args.jobs)])
    elapsed = time.monotonic() - start
    assert all(t["stage"] == "complete" for t in tasks), [t["error"] for t in tasks]
    await client.close()
    return elapsed


async def submit(client: TestClient[Any, Any], wav: bytes) -> str:
    resp = await client.post(
        "/api/tasks",
        params={"filename": "t.wav"},
        data=wav,
        headers={"Content-Type": "audio/wav"},
    )
    task_id: str = (await resp.json())["id"]
    return task_id


async def ended(client: TestClient[Any, Any], ids: list[str]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(_ended(client, task_id) for task_id in ids)))


async def _ended(client: TestClient[Any, Any], task_id: str) -> dict[str, Any]:
    """Long-polls the task (?wait=&since=) until it ends: no request while nothing changes,
    so the bench's own polling takes no CPU from the jobs it measures."""
    task: dict[str, Any] = await (await client.get(f"/api/tasks/{task_id}")).json()
    while task["stage"] not in ("complete", "failed", "cancelled"):
        params = {"wait": "60", "since": str(task["seq"])}
        task = await (await client.get(f"/api/tasks/{task_id}", params=params)).json()
    return task


def _dask_probe(count: int, gap: float) -> int:
    w = get_worker()
    for i in range(count):
        w.log_event("bench-probe", [time.time(), i])
        time.sleep(gap)
    return count


def _local_probe(count: int, gap: float) -> int:
    for i in range(count):
        worker.send(("probe", time.time(), i))
        time.sleep(gap)
    return count


async def dask_latency(cluster: LocalCluster) -> list[float]:
    got: list[float] = []
    async with Client(cluster, asynchronous=True) as client:
        client.subscribe_topic("bench-probe", lambda event: got.append(time.time() - event[1][0]))
        await asyncio.sleep(0.5)
        await client.submit(_dask_probe, PROBES, PROBE_GAP, resources={RESOURCE: 1}, pure=False)
        while len(got) < PROBES:
            await asyncio.sleep(0.05)
    return got


async def local_latency() -> list[float]:
    loop = asyncio.get_running_loop()
    slot = local._Slot(multiprocessing.get_context("spawn"), 1, loop)
    got: list[float] = []
    try:
        await loop.run_in_executor(slot.pool, _local_probe, 1, 0.0)  # warm: the spawn
        await slot.messages.get()
        task = loop.run_in_executor(slot.pool, _local_probe, PROBES, PROBE_GAP)
        while len(got) < PROBES:
            message = await slot.messages.get()
            got.append(time.time() - message[1])
        await task
    finally:
        await slot.close()
    return got


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 2),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    times: dict[int, list[float]] = {1: [], 2: []}
    latency: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for nodes in (1, 2):
                folder = Path(tmp) / f"r{round_}n{nodes}"
                # The tests' cluster: worker processes with GPU=1 and the node plugin.
                async with node_cluster(folder, workers=nodes) as cluster:
                    times[nodes].append(await run_jobs(folder, cluster, nodes, args))
                    if nodes == 2 and round_ == 0:
                        latency["dask"] = summary(await dask_latency(cluster))
        latency["local"] = summary(await local_latency())
    one, two = statistics.median(times[1]), statistics.median(times[2])
    return {
        "jobs": args.jobs,
        "warm_nodes": not args.cold,
        "cpu_seconds_per_job": 3 * args.stage_seconds,
        "cores": len(os.sched_getaffinity(0)),
        "one_node_s": [round(t, 2) for t in times[1]],
        "two_nodes_s": [round(t, 2) for t in times[2]],
        "ratio": round(two / one, 3),
        "progress_latency": latency,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--stage-seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--cold", action="store_true", help="no warm-up job: time each node's first child start"
    )
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
