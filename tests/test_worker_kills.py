"""50 workers killed with SIGKILL in the middle of their progress, while another slot works.

Each slot has its own progress channel (jobs/local.py): a worker killed while it holds its
channel's lock, or half-way through a message, silences only its own slot, which is rebuilt.
The other slot's progress must keep coming the whole time, and garbage on a channel is
skipped, not fatal.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

from transcriber.jobs.engines.executor import Event, WorkerLost
from transcriber.jobs.engines.local import LocalExecutor
from transcriber.worker.job import Job

from .conftest import tone_wav

KILLS = 50
# Between two progress updates of the steady job: 0.3 s steps, sent at most twice a second.
# The bound is generous for a busy 2-core machine that spawns a worker every second or two.
MAX_GAP = 10.0


def make_job(folder: Path, task_id: str, stage_seconds: float) -> Job:
    work = folder / task_id
    work.mkdir(parents=True)
    audio = work / "source.wav"
    audio.write_bytes(tone_wav(seconds=1))
    return Job(
        task_id=task_id,
        attempt=1,
        audio_path=audio,
        work_dir=work,
        stages=("transcribing", "aligning", "diarizing"),
        options={},
        pipeline="plumbing",
        plumbing_stage_seconds=stage_seconds,
    )


def slot_pid(executor: LocalExecutor, slot: int) -> int:
    (pid,) = executor._slots[slot].worker.pool._processes.keys()
    return int(pid)


def inject_garbage(executor: LocalExecutor, slot: int) -> None:
    channel = executor._slots[slot].worker.channel
    channel.put("not a tuple")
    channel.put(("progress", "short"))
    channel.put(("progress", "nobody", 1, "transcribing"))  # a field missing
    with channel._wlock:
        channel._writer.send_bytes(b"\x80\x05 not a pickle")


async def test_sigkill_50_workers_while_another_slot_reports(tmp_path: Path) -> None:
    heard: dict[str, list[float]] = defaultdict(list)

    async def sink(event: Event) -> None:
        heard[event.task_id].append(time.monotonic())

    executor = LocalExecutor(2)
    await executor.start(sink)
    done = asyncio.Event()
    steady_results: list[str] = []

    async def steady() -> None:
        index = 0
        while not done.is_set():
            job = make_job(tmp_path, f"steady{index}", stage_seconds=3.0)
            result = await executor.run(0, job)
            steady_results.append(",".join(result.done_stages))
            index += 1

    steady_loop = asyncio.create_task(steady())
    try:
        for kill in range(KILLS):
            victim = make_job(tmp_path, f"victim{kill}", stage_seconds=0.5)
            run = asyncio.create_task(executor.run(1, victim))
            while not heard[victim.task_id] and not run.done():
                await asyncio.sleep(0.01)
            await asyncio.sleep(random.uniform(0, 0.3))  # somewhere in its burst of progress
            os.kill(slot_pid(executor, 1), signal.SIGKILL)
            with pytest.raises(WorkerLost):
                await run
            if kill % 10 == 0:
                inject_garbage(executor, 0)
        done.set()
        await asyncio.wait_for(steady_loop, 60)
    finally:
        done.set()
        steady_loop.cancel()
        await executor.stop()

    steady_times = sorted(
        t for task, times in heard.items() if task.startswith("steady") for t in times
    )
    gaps = [b - a for a, b in itertools.pairwise(steady_times)]
    assert len(steady_results) >= 2
    assert set(steady_results) == {"transcribing,aligning,diarizing"}
    assert max(gaps) < MAX_GAP, f"the steady slot went {max(gaps):.1f} s without progress"
    assert all(heard[f"victim{kill}"] for kill in range(KILLS))
