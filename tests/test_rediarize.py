"""Re-running diarization alone: only the Diarizing stage runs, from the saved transcript and
alignment; the previous revision stays the transcript until the new one is complete; text
edits carry over, speaker edits are reset."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import assert_error, tone_wav, upload, wait_for_stage
from transcriber.web.keys import TASKS

WAV = tone_wav(10.0)


async def stages_until_complete(client: Any, task_id: str, since: int) -> list[str]:
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        resp = await client.get(f"/api/tasks/{task_id}", params={"wait": 5, "since": since})
        snap = await resp.json()
        since = snap["seq"]
        if not seen or seen[-1] != snap["stage"]:
            seen.append(snap["stage"])
        if snap["stage"] in ("complete", "failed"):
            return seen
    raise AssertionError(f"never complete: {seen}")


async def test_rediarize_runs_only_diarizing_and_carries_text_edits(make_client: Any) -> None:
    client = await make_client(plumbing_stage_seconds=1.0)
    snap = await (await upload(client, WAV, filename="talk.wav")).json()
    tid = snap["id"]
    await wait_for_stage(client, tid, {"complete"})
    url = f"/api/tasks/{tid}"
    await client.patch(f"{url}/segments/2", json={"text": "Edited by hand."})
    await client.patch(f"{url}/speakers", json={"SPEAKER_00": "Dana"})
    work = client.server.app[TASKS].work_dir(tid)
    saved = {
        name: (work / name).stat().st_mtime_ns for name in ("transcribing.json", "aligning.json")
    }
    resp = await client.post(f"{url}/rediarize", json={"num_speakers": 2})
    assert resp.status == 202, await resp.text()
    queued = await resp.json()
    assert queued["stage"] == "queued" and queued["options"]["num_speakers"] == 2
    during = await (await client.get(f"{url}/transcript")).json()
    assert (during["revision"], during["speakers"]) == (2, ["Dana"])
    busy = await client.patch(f"{url}/speakers", json={"SPEAKER_00": "Eve"})
    await assert_error(busy, 409, "CONFLICT")
    again = await client.post(f"{url}/rediarize", json={})
    await assert_error(again, 409, "CONFLICT")
    stages = await stages_until_complete(client, tid, queued["seq"])
    assert stages[-2:] == ["diarizing", "complete"] and set(stages) <= {
        "queued",
        "diarizing",
        "complete",
    }
    after = {name: (work / name).stat().st_mtime_ns for name in saved}
    assert after == saved
    body = await (await client.get(f"{url}/transcript")).json()
    assert (body["revision"], body["source"]) == (3, "rediarize")
    assert body["speakers"] == ["SPEAKER_00", "SPEAKER_01"] and body["speaker_names"] == {}
    assert [s["speaker"] for s in body["segments"]] == [f"SPEAKER_0{i % 2}" for i in range(5)]
    assert body["segments"][2]["text"] == "Edited by hand." and body["segments"][2]["edited"]
    assert body["segments"][2]["words"][0]["speaker"] == "SPEAKER_00"
    assert body["segments"][3]["text"] == "Plumbing segment 4."
    first = await (await client.get(f"{url}/transcript", params={"revision": "0"})).json()
    assert first["speakers"] == ["SPEAKER_00"]


async def test_rediarize_refuses_bad_options_and_unfinished_tasks(make_client: Any) -> None:
    client = await make_client(plumbing_stage_seconds=1.0)
    snap = await (await upload(client, WAV)).json()
    url = f"/api/tasks/{snap['id']}/rediarize"
    await assert_error(await client.post(url, json={"num_speakers": 2}), 409, "CONFLICT")
    final = await wait_for_stage(client, snap["id"], {"complete"})
    for body in (
        {"num_speakers": 0},
        {"min_speakers": 3, "max_speakers": 2},
        {"language": "de"},
        [2],
    ):
        await assert_error(await client.post(url, json=body), 400, "BAD_REQUEST")
    unchanged = await (await client.get(f"/api/tasks/{snap['id']}")).json()
    assert unchanged["seq"] == final["seq"] and unchanged["options"] == final["options"]
    await assert_error(await client.post("/api/tasks/nope/rediarize"), 404, "UNKNOWN_TASK")


async def test_a_restart_during_rediarize_resumes_it(make_client: Any) -> None:
    """The restarts that cut the first run are not held against the new one."""
    client = await make_client(plumbing_stage_seconds=3.0, max_attempts=3)
    tid = (await (await upload(client, WAV)).json())["id"]
    await wait_for_stage(client, tid, {"complete"}, timeout=60)
    # As if two restarts had cut the first run, which then completed on its third attempt.
    await client.server.app[TASKS].update(tid, interruptions=2)
    resp = await client.post(f"/api/tasks/{tid}/rediarize", json={"num_speakers": 2})
    assert resp.status == 202, await resp.text()
    await wait_for_stage(client, tid, {"diarizing"})
    await client.close()  # the server stops while diarizing
    again = await make_client(plumbing_stage_seconds=0.3, max_attempts=3)
    final = await wait_for_stage(again, tid, {"complete", "failed"})
    assert (final["stage"], final["error"]) == ("complete", None)
    body = await (await again.get(f"/api/tasks/{tid}/transcript")).json()
    assert (body["source"], body["speakers"]) == ("rediarize", ["SPEAKER_00", "SPEAKER_01"])
