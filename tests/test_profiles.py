"""Known voices through the real server, real SQLite and the plumbing pipeline (whose
diarization gives each label one made-up voice in every task: SPEAKER_00 of two tasks is one
person). The real pipeline's voices are tested in test_profiles_real.py."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import assert_error, tone_wav, upload, wait_for_stage
from transcriber.store.profiles import Profile, Sample
from transcriber.web.keys import PROFILES, STORE, TASKS, TRANSCRIPTS

WAV = tone_wav(10.0)


async def done_task(client: Any, **fields: str) -> str:
    snap = await (await upload(client, WAV, filename="talk.wav", **fields)).json()
    await wait_for_stage(client, snap["id"], {"complete"})
    # The run's output becomes a revision (and its voices stored) on completion or on the
    # first read, whichever comes first.
    await transcript(client, snap["id"])
    return str(snap["id"])


async def rows(client: Any, sql: str, *args: object) -> list[tuple[Any, ...]]:
    async with client.server.app[STORE].db.execute(sql, args) as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def counts(client: Any) -> tuple[int, ...]:
    out = []
    for table in ("profiles", "profile_samples", "profile_rejections"):
        out.append((await rows(client, f"SELECT COUNT(*) FROM {table}"))[0][0])
    return tuple(out)


async def transcript(client: Any, task_id: str, fmt: str = "json") -> Any:
    resp = await client.get(f"/api/tasks/{task_id}/transcript", params={"format": fmt})
    assert resp.status == 200, await resp.text()
    return await resp.json() if fmt == "json" else await resp.read()


async def test_each_speaker_keeps_a_unit_voice_that_no_export_carries(make_client: Any) -> None:
    client = await make_client()
    tid = await done_task(client, num_speakers="2")
    stored = await rows(
        client, "SELECT speaker, seconds, embedding FROM task_voices WHERE task_id = ?", tid
    )
    assert [(s, round(sec, 3)) for s, sec, _ in stored] == [
        ("SPEAKER_00", 6.0),
        ("SPEAKER_01", 4.0),
    ]
    for _, _, blob in stored:
        vector = np.frombuffer(blob, dtype="<f4")
        assert vector.shape == (192,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4
    for fmt in ("json", "txt", "srt", "vtt", "tsv", "md", "docx"):
        body = await transcript(client, tid, fmt)
        text = json.dumps(body) if fmt == "json" else body.decode("latin-1")
        assert "embedding" not in text and '"voices"' not in text, fmt
    body = await transcript(client, tid)
    assert body["speaker_profiles"] == {} and "voices" not in body
    rttm = await client.get(f"/api/tasks/{tid}/diarization.rttm")
    assert "embedding" not in await rttm.text()
    # A re-diarization replaces the task's voices with its own speakers'.
    assert (
        await client.post(f"/api/tasks/{tid}/rediarize", json={"num_speakers": 1})
    ).status == 202
    await wait_for_stage(client, tid, {"complete"})
    await transcript(client, tid)
    again = await rows(client, "SELECT speaker, seconds FROM task_voices WHERE task_id = ?", tid)
    assert again == [("SPEAKER_00", 10.0)]


async def test_a_profile_names_the_same_voice_in_the_next_task(make_client: Any) -> None:
    client = await make_client()
    first = await done_task(client, num_speakers="2")
    await client.patch(f"/api/tasks/{first}/speakers", json={"SPEAKER_00": "Anna"})
    resp = await client.post("/api/profiles", json={"task_id": first, "speaker": "SPEAKER_00"})
    assert resp.status == 201, await resp.text()
    anna = await resp.json()
    assert resp.headers["Location"] == f"/api/profiles/{anna['id']}"
    assert anna["name"] == "Anna" and anna["seconds"] == 6.0
    assert [(s["task_id"], s["speaker"]) for s in anna["samples"]] == [(first, "SPEAKER_00")]
    assert (await transcript(client, first))["speaker_profiles"]["SPEAKER_00"] == {
        "profile_id": anna["id"],
        "similarity": 1.0,
    }
    # Stored as an edit's delta, and read back from the database the same.
    stored = await client.server.app[TRANSCRIPTS].store.get(first, 2)
    assert stored is not None and stored.source == "edit"
    assert stored.data["speaker_profiles"]["SPEAKER_00"]["profile_id"] == anna["id"]
    assert stored.data["speaker_names"] == {"SPEAKER_00": "Anna"}
    second = await done_task(client, num_speakers="2")
    body = await transcript(client, second)
    assert body["speaker_names"] == {"SPEAKER_00": "Anna"}
    assert body["speaker_profiles"]["SPEAKER_00"]["profile_id"] == anna["id"]
    assert body["speaker_profiles"]["SPEAKER_00"]["similarity"] > 0.99
    assert "SPEAKER_01" not in body["speaker_profiles"]
    assert body["speakers"] == ["Anna", "SPEAKER_01"]
    assert b"Anna" in await transcript(client, second, "srt")
    assert b"Anna: Plumbing segment 1." in await transcript(client, second, "txt")
    listing = await (await client.get("/api/profiles")).json()
    assert [p["name"] for p in listing["profiles"]] == ["Anna"]
    assert "embedding" not in json.dumps(listing)


async def test_undo_a_match_holds_through_a_rediarization(make_client: Any) -> None:
    client = await make_client()
    first = await done_task(client)
    made = await client.post(
        "/api/profiles", json={"task_id": first, "speaker": "SPEAKER_00", "name": "Anna"}
    )
    anna = await made.json()
    second = await done_task(client)
    assert (await transcript(client, second))["speaker_names"] == {"SPEAKER_00": "Anna"}
    url = f"/api/tasks/{second}/speakers/SPEAKER_00/profile"
    resp = await client.delete(url)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "speaker": "SPEAKER_00",
        "speaker_names": {},
        "speaker_profiles": {},
    }
    body = await transcript(client, second)
    assert body["speaker_names"] == {} and body["speakers"] == ["SPEAKER_00"]
    assert await rows(client, "SELECT task_id, profile_id FROM profile_rejections") == [
        (second, anna["id"])
    ]
    await assert_error(await client.delete(url), 409, "CONFLICT")
    # While the first task diarizes again, its match cannot be undone, and nothing is stored.
    assert (await client.post(f"/api/tasks/{first}/rediarize", json={})).status == 202
    busy = await client.delete(f"/api/tasks/{first}/speakers/SPEAKER_00/profile")
    await assert_error(busy, 409, "CONFLICT")
    assert len(await rows(client, "SELECT * FROM profile_rejections")) == 1
    await wait_for_stage(client, first, {"complete"})
    resp = await client.post(f"/api/tasks/{second}/rediarize", json={})
    assert resp.status == 202
    await wait_for_stage(client, second, {"complete"})
    again = await transcript(client, second)
    assert again["source"] == "rediarize" and again["speaker_names"] == {}
    # The first task, re-diarized, is still matched: the rejection is the second task's only.
    assert (await transcript(client, first))["speaker_names"] == {"SPEAKER_00": "Anna"}


async def test_match_profiles_off_and_server_setting_off(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    first = await done_task(client)
    await client.post(
        "/api/profiles", json={"task_id": first, "speaker": "SPEAKER_00", "name": "A"}
    )
    unmatched = await done_task(client, match_profiles="false")
    assert (await transcript(client, unmatched))["speaker_names"] == {}
    off = await make_client(profiles=False, data_dir=tmp_path / "off")
    tid = await done_task(off)
    assert (await transcript(off, tid))["speaker_names"] == {}
    resp = await off.post("/api/profiles", json={"task_id": tid, "speaker": "SPEAKER_00"})
    await assert_error(resp, 403, "PROFILES_OFF")
    # The page reads this and offers no "Remember this voice" there.
    assert (await (await off.get("/api/profiles")).json()) == {"profiles": [], "enabled": False}
    assert (await (await client.get("/api/profiles")).json())["enabled"] is True


async def test_bad_input_is_refused_and_stores_nothing(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    tid = await done_task(client, num_speakers="4")
    ok = await client.post(
        "/api/profiles", json={"task_id": tid, "speaker": "SPEAKER_00", "name": "Anna"}
    )
    anna = await ok.json()
    before = await counts(client)
    bare = await done_task(client, diarize="false")
    slow = await make_client(plumbing_stage_seconds=30.0, data_dir=tmp_path / "slow")
    running = (await (await upload(slow, WAV)).json())["id"]
    cases = [
        ({"task_id": "nope", "speaker": "SPEAKER_00"}, 404, "UNKNOWN_TASK"),
        ({"task_id": tid, "speaker": "SPEAKER_09"}, 404, "UNKNOWN_SPEAKER"),
        ({"task_id": tid, "speaker": "SPEAKER_01", "name": "Bo"}, 422, "TOO_LITTLE_SPEECH"),
        ({"task_id": bare, "speaker": "SPEAKER_00"}, 409, "NO_VOICES"),
        ({"task_id": tid, "speaker": "SPEAKER_00", "name": "anna"}, 409, "NAME_TAKEN"),
        ({"task_id": tid, "speaker": "SPEAKER_00", "name": "A\x07b"}, 400, "BAD_REQUEST"),
        ({"task_id": tid, "speaker": "SPEAKER_00", "name": "x" * 101}, 400, "BAD_REQUEST"),
        ({"task_id": tid}, 400, "BAD_REQUEST"),
        ({"task_id": tid, "speaker": "SPEAKER_00", "extra": 1}, 400, "BAD_REQUEST"),
    ]
    for body, status, code in cases:
        await assert_error(await client.post("/api/profiles", json=body), status, code)
    samples = f"/api/profiles/{anna['id']}/samples"
    for body, status, code in cases[:4]:
        sample = {k: v for k, v in body.items() if k != "name"}
        await assert_error(await client.post(samples, json=sample), status, code)
    resp = await slow.post("/api/profiles", json={"task_id": running, "speaker": "SPEAKER_00"})
    await assert_error(resp, 409, "NOT_READY")
    sample = {"task_id": tid, "speaker": "SPEAKER_00"}
    await assert_error(
        await client.post("/api/profiles/nope/samples", json=sample), 404, "UNKNOWN_PROFILE"
    )
    await assert_error(
        await client.patch("/api/profiles/nope", json={"name": "X"}), 404, "UNKNOWN_PROFILE"
    )
    await assert_error(await client.delete("/api/profiles/nope"), 404, "UNKNOWN_PROFILE")
    await assert_error(
        await client.delete(f"/api/tasks/{tid}/speakers/SPEAKER_07/profile"), 404, "UNKNOWN_SPEAKER"
    )
    await assert_error(
        await client.delete("/api/tasks/nope/speakers/SPEAKER_00/profile"), 404, "UNKNOWN_TASK"
    )
    assert await counts(client) == before


async def test_samples_rename_and_delete_remove_every_embedding(make_client: Any) -> None:
    client = await make_client()
    first, second = await done_task(client), await done_task(client, num_speakers="2")
    anna = await (
        await client.post(
            "/api/profiles", json={"task_id": first, "speaker": "SPEAKER_00", "name": "Anna"}
        )
    ).json()
    bo = await (
        await client.post(
            "/api/profiles", json={"task_id": second, "speaker": "SPEAKER_01", "name": "Bo"}
        )
    ).json()
    resp = await client.post(
        f"/api/profiles/{anna['id']}/samples", json={"task_id": second, "speaker": "SPEAKER_00"}
    )
    assert resp.status == 200
    grown = await resp.json()
    assert [s["task_id"] for s in grown["samples"]] == [first, second]
    assert grown["seconds"] == 16.0
    clash = await client.patch(f"/api/profiles/{bo['id']}", json={"name": " ANNA "})
    await assert_error(clash, 409, "NAME_TAKEN")
    renamed = await client.patch(f"/api/profiles/{bo['id']}", json={"name": "  Bo   Smith "})
    assert (await renamed.json())["name"] == "Bo Smith"
    assert (await client.delete(f"/api/profiles/{anna['id']}")).status == 204
    assert await rows(
        client, "SELECT COUNT(*) FROM profile_samples WHERE profile_id = ?", anna["id"]
    ) == [(0,)]
    assert [p["name"] for p in (await (await client.get("/api/profiles")).json())["profiles"]] == [
        "Bo Smith"
    ]
    # The task's own voices stay with the task until it is deleted, then go with it.
    assert (await client.delete(f"/api/tasks/{first}")).status == 204
    assert await rows(client, "SELECT COUNT(*) FROM task_voices WHERE task_id = ?", first) == [(0,)]


async def test_export_then_import_elsewhere_and_bad_files(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    tid = await done_task(client)
    await client.post(
        "/api/profiles", json={"task_id": tid, "speaker": "SPEAKER_00", "name": "Anna"}
    )
    resp = await client.get("/api/profiles/export")
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    document = await resp.json()
    assert document["format"] == "transcriber-voice-profiles" and document["dimension"] == 192
    (profile,) = document["profiles"]
    assert profile["name"] == "Anna" and len(profile["samples"][0]["embedding"]) == 192
    target = await make_client(data_dir=tmp_path / "elsewhere")
    await assert_error(await target.post("/api/profiles/import", data=b"{nope"), 400, "BAD_REQUEST")
    short = json.loads(json.dumps(document))
    short["profiles"][0]["samples"][0]["embedding"] = [0.1] * 191
    nan = json.loads(json.dumps(document))
    nan["profiles"][0]["samples"][0]["embedding"][5] = math.nan
    wrong = json.loads(json.dumps(document)) | {"format": "something-else"}
    zero = json.loads(json.dumps(document))
    zero["profiles"][0]["samples"][0]["embedding"] = [0.0] * 192
    huge = json.loads(json.dumps(document))
    huge["profiles"][0]["samples"][0]["embedding"][0] = 1e308  # inf as float32
    endless = json.loads(json.dumps(document))
    endless["profiles"][0]["samples"][0]["seconds"] = 1e308
    for bad in (short, wrong, zero, huge, endless, {"profiles": "x"}, [1, 2]):
        await assert_error(await target.post("/api/profiles/import", json=bad), 400, "BAD_REQUEST")
    resp = await target.post(
        "/api/profiles/import", data=json.dumps(nan), headers={"Content-Type": "application/json"}
    )
    await assert_error(resp, 400, "BAD_REQUEST")
    twice = json.loads(json.dumps(document))
    twice["profiles"].append(twice["profiles"][0])
    await assert_error(await target.post("/api/profiles/import", json=twice), 409, "NAME_TAKEN")
    assert await counts(target) == (0, 0, 0)
    resp = await target.post("/api/profiles/import", json=document)
    assert resp.status == 201, await resp.text()
    assert [p["name"] for p in (await resp.json())["profiles"]] == ["Anna"]
    await assert_error(await target.post("/api/profiles/import", json=document), 409, "NAME_TAKEN")
    assert await counts(target) == (1, 1, 0)
    matched = await done_task(target)
    assert (await transcript(target, matched))["speaker_names"] == {"SPEAKER_00": "Anna"}


async def test_matching_with_a_thousand_profiles_adds_under_50_ms(make_client: Any) -> None:
    client = await make_client()
    tid = await done_task(client, num_speakers="3")
    app = client.server.app
    rng = np.random.default_rng(0)
    when = "2026-01-01T00:00:00.000Z"
    many = [
        Profile(
            f"p{i:04d}",
            f"Person {i}",
            when,
            when,
            tuple(
                Sample("t", "SPEAKER_00", 10.0, rng.standard_normal(192), when) for _ in range(3)
            ),
        )
        for i in range(1000)
    ]
    await app[PROFILES].store.add(many)
    start = time.perf_counter()
    await app[PROFILES].refresh()
    cold = time.perf_counter() - start
    task = await app[TASKS].require(tid)
    data = (await app[TRANSCRIPTS].latest(tid))[1].data
    work = app[TASKS].work_dir(tid)
    raw = json.loads((work / "diarizing.json").read_text())["voices"]
    times = []
    for _ in range(7):
        start = time.perf_counter()
        out = await app[PROFILES].on_output(task, raw, data)
        times.append(time.perf_counter() - start)
    assert "speaker_profiles" not in out  # random voices: nobody is recognised
    median = sorted(times)[3]
    print(f"1,000 profiles: gallery {cold * 1000:.1f} ms, matching {median * 1000:.1f} ms")
    assert sorted(times)[3] < 0.05, (cold, times)


async def test_profile_routes_need_the_token(make_client: Any) -> None:
    client = await make_client(token="voices-token")
    auth = {"Authorization": "Bearer voices-token"}
    snap = await (await client.post("/api/tasks", json={"filename": "a.wav"}, headers=auth)).json()
    calls = [
        ("GET", "/api/profiles"),
        ("GET", "/api/profiles/export"),
        ("POST", "/api/profiles"),
        ("POST", "/api/profiles/import"),
        ("PATCH", "/api/profiles/x"),
        ("DELETE", "/api/profiles/x"),
        ("POST", "/api/profiles/x/samples"),
        ("DELETE", f"/api/tasks/{snap['id']}/speakers/SPEAKER_00/profile"),
    ]
    for method, path in calls:
        await assert_error(await client.request(method, path, json={}), 401, "UNAUTHORIZED")
    listing = await client.get("/api/profiles", headers=auth)
    assert listing.status == 200 and await listing.json() == {"profiles": [], "enabled": True}
