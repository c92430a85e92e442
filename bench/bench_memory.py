"""A server that stays bounded: its memory over thousands of tasks, the queue's cost per task.

1. rss: N tasks (default 10,000) created and completed through the plumbing pipeline (real
   server process, real workers, stages of no length), at most `--in-flight` at a time. The
   server's RSS (settled) is read after the first 500 tasks and every 1,000 after; the aim is
   RSS after all of them within 20 MB of RSS after 500.
2. queue: in-process (real Tasks on SQLite, the coordinator's enqueue, the queue's get and the
   position news that follows it), the time per enqueue and per dequeue with 10, 100, 1,000
   and 5,000 tasks waiting; the aim is a flat line.

    .venv/bin/python bench/bench_memory.py [--tasks 10000] [--in-flight 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import TERMINAL, Server, plumbing_args, plumbing_env, settle_rss, tone_wav
from transcriber.config import Config
from transcriber.jobs.hub import Hub
from transcriber.jobs.running.runner import Runner
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.options import DEFAULT_OPTIONS
from transcriber.store.db import Store

MB = 1e6


async def one_task(session: aiohttp.ClientSession, url: str, audio: bytes) -> str:
    params = {"filename": "tiny.wav"}
    async with session.post(f"{url}/api/tasks", params=params, data=audio) as resp:
        snap: dict[str, Any] = await resp.json()
        assert resp.status == 201, snap
    while snap["stage"] not in TERMINAL:
        wait = {"wait": "30", "since": str(snap["seq"])}
        async with session.get(f"{url}/api/tasks/{snap['id']}", params=wait) as resp:
            snap = await resp.json()
    return str(snap["stage"])


async def rss_run(tmp: Path, total: int, in_flight: int) -> dict[str, Any]:
    audio = tone_wav(0.5)
    args = plumbing_args("--workers", "2", "--max-queue", str(10 * in_flight))
    readings: dict[int, float] = {}
    stages: dict[str, int] = {}
    with Server(tmp, *args, env=plumbing_env(0.0)) as server:
        async with aiohttp.ClientSession() as session:
            done, mark = 0, 500
            begin = time.monotonic()
            while done < total:
                batch = min(in_flight, total - done)
                jobs = [one_task(session, server.url, audio) for _ in range(batch)]
                for stage in await asyncio.gather(*jobs):
                    stages[stage] = stages.get(stage, 0) + 1
                done += batch
                if done >= mark or done == total:
                    mark = 1000 if mark == 500 else mark + 1000
                    readings[done] = settle_rss(server.pid) / MB
                    print(f"{done:6d} tasks  server RSS {readings[done]:6.1f} MB", flush=True)
            seconds = time.monotonic() - begin
    first = next(iter(readings.values()))  # after the first 500 (or so) tasks
    return {
        "tasks": total,
        "stages": stages,
        "seconds": round(seconds, 1),
        "rss_mb": readings,
        "growth_after_500_mb": round(readings[total] - first, 1),
    }


async def queue_costs(tmp: Path, sizes: list[int], sample: int = 200) -> list[dict[str, Any]]:
    config = Config(data_dir=tmp / "queue", pipeline="plumbing")
    store = await Store.open(config.db_path)
    tasks = Tasks(store, Hub(), config.files_dir)
    runner = Runner(config, tasks)  # not started: the loops would take the tasks
    results = []
    try:
        for size in sizes:
            while len(runner.queue) < size:
                await runner.enqueue((await tasks.create("w.wav", dict(DEFAULT_OPTIONS), "")).id)
            fresh = [
                (await tasks.create("m.wav", dict(DEFAULT_OPTIONS), "")).id for _ in range(sample)
            ]
            enqueue = []
            for task_id in fresh:
                start = time.perf_counter()
                await runner.enqueue(task_id)
                enqueue.append(time.perf_counter() - start)
            dequeue = []
            for _ in range(sample):
                start = time.perf_counter()
                await runner.queue.get()
                await runner._positions_moved()
                dequeue.append(time.perf_counter() - start)
            row = {
                "waiting": size,
                "enqueue_us": round(statistics.median(enqueue) * 1e6),
                "dequeue_us": round(statistics.median(dequeue) * 1e6),
            }
            print(
                f"{size:5d} waiting  enqueue {row['enqueue_us']:5d} us  "
                f"dequeue {row['dequeue_us']:4d} us (medians of {sample})",
                flush=True,
            )
            results.append(row)
    finally:
        await store.close()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--json", type=Path)
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        report: dict[str, Any] = {"queue": await queue_costs(tmp, [10, 100, 1000, 5000])}
        if not ns.skip_rss:
            report["rss"] = await rss_run(tmp, ns.tasks, ns.in_flight)
    print(json.dumps(report, indent=1))
    if ns.json:
        ns.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
