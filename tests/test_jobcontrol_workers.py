"""Cancel, delete and the watchdog with real worker processes (plumbing pipeline).

`plumbing_hang` makes a stage sleep without reporting: "STAGE" is a long library call that
Python can interrupt (the worker's cancel watch stops it, the worker lives on), "STAGE:stuck"
one that never gives control back (only the kill after the grace period stops it).
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from transcriber.jobs.engines.local import LocalExecutor
from transcriber.web.keys import RUNNER

from .conftest import ClientFactory, upload, wait_for_stage
from .daskcluster import until
from .media import SOURCE


def executor_of(client: Any) -> LocalExecutor:
    executor = client.app[RUNNER].executor
    assert isinstance(executor, LocalExecutor)
    return executor


def worker_pid(client: Any) -> int:
    (pid,) = executor_of(client)._slots[0].worker.pool._processes.keys()
    return int(pid)


async def post(client: Any, wav_bytes: bytes, name: str) -> str:
    resp = await upload(client, wav_bytes, name)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


@pytest.mark.parametrize("stage", ["transcribing", "diarizing"])
async def test_cancel_interrupts_a_long_call_and_the_worker_lives_on(
    make_client: ClientFactory, wav_bytes: bytes, stage: str
) -> None:
    # A grace far beyond the test: the worker must stop by itself, not be killed.
    client = await make_client(plumbing_hang=stage, cancel_grace=300)
    first = await post(client, wav_bytes, "first.wav")
    second = await post(client, wav_bytes, "second.wav")
    await wait_for_stage(client, first, {stage})
    pid = worker_pid(client)
    cancelled = await (await client.post(f"/api/tasks/{first}/cancel")).json()
    assert (cancelled["stage"], cancelled["error"]["stage"]) == ("cancelled", stage)
    # The slot is free for the next task, on the same worker process.
    await wait_for_stage(client, second, {"transcribing", "aligning", "diarizing"}, timeout=60)
    assert worker_pid(client) == pid
    assert (await (await client.get(f"/api/tasks/{first}")).json())["stage"] == "cancelled"
    await client.post(f"/api/tasks/{second}/cancel")


async def test_stuck_worker_is_killed_after_the_grace_and_delete_stops_it(
    make_client: ClientFactory, wav_bytes: bytes, tmp_path: Any
) -> None:
    client = await make_client(plumbing_hang="aligning:stuck", cancel_grace=1)
    first = await post(client, wav_bytes, "first.wav")
    second = await post(client, wav_bytes, "second.wav")
    await wait_for_stage(client, first, {"aligning"})
    pid = worker_pid(client)
    await client.post(f"/api/tasks/{first}/cancel")
    # Killed after the grace: the next task starts on a fresh worker.
    await wait_for_stage(client, second, {"transcribing", "aligning"}, timeout=60)
    # The stage is written before the job reaches the new pool, which starts its process then.
    await until(lambda: executor_of(client)._slots[0].worker.pool._processes, 30, "a new worker")
    assert worker_pid(client) != pid
    assert (await (await client.get(f"/api/tasks/{first}")).json())["stage"] == "cancelled"
    await wait_for_stage(client, second, {"aligning"}, timeout=60)
    pid = worker_pid(client)
    # Deleting the stuck task stops its worker before its files go.
    resp = await client.delete(f"/api/tasks/{second}")
    assert resp.status == 204
    assert not (tmp_path / "data" / "tasks" / second).exists()
    assert client.app[RUNNER].busy == 0
    assert (await client.get(f"/api/tasks/{second}")).status == 404
    third = await post(client, wav_bytes, "third.wav")
    await wait_for_stage(client, third, {"aligning"}, timeout=60)
    assert worker_pid(client) != pid


async def test_watchdog_kills_a_hung_stage_with_job_timeout(
    make_client: ClientFactory, wav_bytes: bytes, tmp_path: Any
) -> None:
    client = await make_client(plumbing_hang="diarizing:stuck", stall_timeout=2)
    task_id = await post(client, wav_bytes, "hangs.wav")
    failed = await wait_for_stage(client, task_id, {"failed", "complete"}, timeout=60)
    error = failed["error"]
    assert (error["code"], error["stage"]) == ("JOB_TIMEOUT", "diarizing")
    assert error["message"] == "The job took too long and was stopped."
    assert "stall timeout is 2 s" in error["detail"]
    # The finished stages are kept for a retry.
    folder = tmp_path / "data" / "tasks" / task_id
    assert (folder / "transcribing.json").exists() and (folder / "aligning.json").exists()
    health = await (await client.get("/api/health")).json()
    assert (health["status"], health["workers"]["busy"]) == ("ok", 0)


async def test_job_timeout_limits_a_job_that_keeps_reporting(
    make_client: ClientFactory, wav_bytes: bytes
) -> None:
    client = await make_client(plumbing_stage_seconds=3, job_timeout=2)
    task_id = await post(client, wav_bytes, "slow.wav")
    failed = await wait_for_stage(client, task_id, {"failed", "complete"}, timeout=60)
    assert failed["error"]["code"] == "JOB_TIMEOUT"
    assert "job timeout is 2 s" in failed["error"]["detail"]
    assert failed["stage_progress"] > 0


@pytest.mark.slow
async def test_cancel_while_the_real_model_loads(make_client: ClientFactory, tmp_path: Any) -> None:
    """The real pipeline in a real worker, cancelled while it prepares the base model (joined
    from its packages into an empty models folder, then loaded): the job stops, the worker
    lives on, and the next task loads the model again and transcribes on it."""
    client = await make_client(
        pipeline="real",
        model="base",
        device="cpu",
        models_dir=tmp_path / "models",
        cancel_grace=300,
    )
    speech = SOURCE.read_bytes()
    first = await post(client, speech, "first.wav")
    snap = await wait_for_stage(client, first, {"transcribing"}, timeout=60)
    while snap["detail"] != "Loading model base":
        assert snap["stage"] == "transcribing" and snap["detail"] == "Starting", snap
        query = {"wait": 5, "since": snap["seq"]}
        snap = await (await client.get(f"/api/tasks/{first}", params=query)).json()
    pid = worker_pid(client)
    cancelled = await (await client.post(f"/api/tasks/{first}/cancel")).json()
    assert (cancelled["stage"], cancelled["error"]["stage"]) == ("cancelled", "transcribing")
    assert (await client.get(f"/api/tasks/{first}/transcript")).status == 409
    # Without diarization: its models live in the default models folder, not in this new one.
    resp = await upload(client, speech, "second.wav", diarize="false")
    second = (await resp.json())["id"]
    done = await wait_for_stage(client, second, {"complete", "failed", "cancelled"}, timeout=300)
    assert done["stage"] == "complete", done["error"]
    assert worker_pid(client) == pid
    text = await (await client.get(f"/api/tasks/{second}/transcript?format=txt")).text()
    assert "lazy dog" in text.lower()
    shutil.rmtree(tmp_path / "models")  # 145 MB; a CI runner may have little disk to spare
