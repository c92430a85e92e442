"""The HTTP API on the plumbing pipeline: real server, real SQLite file, real worker processes."""

from __future__ import annotations

import asyncio
from typing import Any

from transcriber.web.keys import TASKS

from .conftest import ClientFactory, assert_error, upload, wait_for_stage


async def test_multipart_upload_runs_to_complete(client: Any, wav_bytes: bytes) -> None:
    resp = await upload(client, wav_bytes, filename="talk.wav", language="en", diarize="true")
    assert resp.status == 201
    snap = await resp.json()
    assert resp.headers["Location"] == f"/api/tasks/{snap['id']}"
    assert snap["filename"] == "talk.wav"
    assert snap["options"]["language"] == "en"
    assert snap["duration"] == 3.0
    assert snap["size"] == len(wav_bytes)
    assert snap["stage"] in ("queued", "transcribing")
    final = await wait_for_stage(client, snap["id"], {"complete", "failed"})
    assert final["stage"] == "complete", final
    assert (final["progress"], final["stage_progress"], final["error"]) == (100, 100, None)
    assert final["attempt"] == 1
    stored = client.app[TASKS].work_dir(snap["id"])
    assert sorted(p.name for p in stored.iterdir()) == [
        "aligning.json",
        "diarizing.json",
        "source.wav",
        "transcribing.json",
    ]


async def test_raw_body_with_query_options(client: Any, wav_bytes: bytes) -> None:
    resp = await client.post(
        "/api/tasks",
        data=wav_bytes,
        params={"filename": "raw.wav", "diarize": "false"},
        headers={"Content-Type": "audio/wav"},
    )
    assert resp.status == 201, await resp.text()
    snap = await resp.json()
    assert (snap["filename"], snap["options"]["diarize"]) == ("raw.wav", False)
    final = await wait_for_stage(client, snap["id"], {"complete", "failed"})
    assert final["stage"] == "complete"
    assert "diarizing" not in final["options"] or True
    stored = client.app[TASKS].work_dir(snap["id"])
    assert not (stored / "diarizing.json").exists()


async def test_two_step_upload(client: Any, wav_bytes: bytes) -> None:
    resp = await client.post(
        "/api/tasks",
        json={"filename": "two.wav", "size": len(wav_bytes), "options": {"num_speakers": 2}},
    )
    assert resp.status == 201
    snap = await resp.json()
    assert (snap["stage"], snap["size"], snap["options"]["num_speakers"]) == (
        "uploading",
        len(wav_bytes),
        2,
    )
    put = await client.put(f"/api/tasks/{snap['id']}/audio", data=wav_bytes)
    assert put.status == 201
    assert (await put.json())["stage"] in ("queued", "transcribing")
    again = await client.put(f"/api/tasks/{snap['id']}/audio", data=wav_bytes)
    await assert_error(again, 409, "CONFLICT")
    final = await wait_for_stage(client, snap["id"], {"complete"})
    assert final["duration"] == 3.0


async def test_transcript_formats(client: Any, wav_bytes: bytes) -> None:
    snap = await (await upload(client, wav_bytes)).json()
    early = await client.get(f"/api/tasks/{snap['id']}/transcript")
    await assert_error(early, 409, "NOT_READY")
    await wait_for_stage(client, snap["id"], {"complete"})
    url = f"/api/tasks/{snap['id']}/transcript"
    body = await (await client.get(url)).json()
    assert body["language"] == "en" and body["speakers"] == ["SPEAKER_00"]
    assert body["segments"][0]["text"] == "Plumbing segment 1."
    assert set(body["timings"]) == {"transcribing", "aligning", "diarizing"}
    txt = await (await client.get(url, params={"format": "txt"})).text()
    assert txt.startswith("SPEAKER_00: Plumbing segment 1.")
    srt = await (await client.get(url, params={"format": "srt"})).text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:03,000\n[SPEAKER_00] Plumbing segment 1.")
    vtt = await (await client.get(url, params={"format": "vtt"})).text()
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:03.000\n<v SPEAKER_00>Plumbing")
    tsv = await (await client.get(url, params={"format": "tsv"})).text()
    assert tsv.splitlines()[1] == "0\t3000\tSPEAKER_00\tPlumbing segment 1."
    rttm = await (await client.get(f"/api/tasks/{snap['id']}/diarization.rttm")).text()
    assert rttm == f"SPEAKER {snap['id']} 1 0.000 3.000 <NA> <NA> SPEAKER_00 <NA> <NA>\n"
    bad = await client.get(url, params={"format": "doc"})
    await assert_error(bad, 400, "BAD_REQUEST")


async def test_list_is_paged_newest_first(client: Any, wav_bytes: bytes) -> None:
    ids = []
    for i in range(3):
        resp = await client.post("/api/tasks", json={"filename": f"f{i}.wav"})
        ids.append((await resp.json())["id"])
    page = await (await client.get("/api/tasks", params={"limit": 2})).json()
    assert [t["id"] for t in page["tasks"]] == [ids[2], ids[1]]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    rest = await (await client.get("/api/tasks", params={"limit": 2, "offset": 2})).json()
    assert [t["id"] for t in rest["tasks"]] == [ids[0]]
    await assert_error(await client.get("/api/tasks", params={"limit": 0}), 400, "BAD_REQUEST")


async def test_a_bad_query_names_the_parameter_and_its_bounds(client: Any) -> None:
    snap = await (await client.post("/api/tasks", json={"filename": "x.wav"})).json()
    task = f"/api/tasks/{snap['id']}"
    cases = [
        ("/api/tasks", {"limit": "x"}, "limit must be a whole number from 1 to 200."),
        ("/api/tasks", {"offset": "-1"}, "offset must be a whole number from 0 to 1000000000."),
        ("/api/tasks", {"before": "yesterday"}, "before must be the 'next' of a previous page."),
        (task, {"wait": "3601"}, "wait must be a whole number from 0 to 3600."),
        ("/api/search", {"q": "a", "limit": "101"}, "limit must be a whole number from 0 to 100."),
        ("/api/search", {"q": "x" * 501}, "q must be from 1 to 500 characters."),
        ("/api/search", {}, "q is required."),
        (f"{task}/transcript", {"format": "pdf"}, "Unknown format 'pdf'."),
        (f"{task}/transcript", {"revision": "one"}, "revision must be a whole number from 0 to"),
        (f"{task}/diarization.rttm", {"revision": "-1"}, "revision must be a whole number from"),
    ]
    for path, params, message in cases:
        error = await assert_error(await client.get(path, params=params), 400, "BAD_REQUEST")
        assert error["message"].startswith(message), (path, params, error)
    error = await assert_error(
        await client.get(f"{task}/transcript", params={"format": "pdf"}), 400, "BAD_REQUEST"
    )
    assert error["detail"] == "formats: json, txt, srt, vtt, tsv, md, docx"


async def test_etag_and_long_poll(client: Any) -> None:
    snap = await (await client.post("/api/tasks", json={"filename": "x.wav"})).json()
    url = f"/api/tasks/{snap['id']}"
    resp = await client.get(url)
    assert resp.headers["ETag"] == f'"{snap["seq"]}"'
    not_modified = await client.get(url, headers={"If-None-Match": f'"{snap["seq"]}"'})
    assert not_modified.status == 304
    loop = asyncio.get_running_loop()
    start = loop.time()
    unchanged = await client.get(url, params={"wait": 1, "since": snap["seq"]})
    assert loop.time() - start >= 0.9
    assert (await unchanged.json())["seq"] == snap["seq"]
    waiter = asyncio.create_task(client.get(url, params={"wait": 30, "since": snap["seq"]}))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await client.post(f"{url}/cancel")
    changed = await (await waiter).json()
    assert (changed["seq"], changed["stage"]) == (snap["seq"] + 1, "cancelled")


async def test_cancel_retry_delete(client: Any, wav_bytes: bytes) -> None:
    snap = await (await upload(client, wav_bytes)).json()
    running = await wait_for_stage(client, snap["id"], {"transcribing", "aligning"})
    cancelled = await (await client.post(f"/api/tasks/{snap['id']}/cancel")).json()
    assert cancelled["stage"] == "cancelled"
    assert cancelled["error"]["code"] == "CANCELLED"
    assert cancelled["error"]["stage"] == running["stage"]
    again = await client.post(f"/api/tasks/{snap['id']}/cancel")
    await assert_error(again, 409, "CONFLICT")
    retried = await (await client.post(f"/api/tasks/{snap['id']}/retry")).json()
    assert (retried["stage"], retried["error"]) == ("queued", None)
    final = await wait_for_stage(client, snap["id"], {"complete"})
    assert final["attempt"] == 2
    work_dir = client.app[TASKS].work_dir(snap["id"])
    assert work_dir.exists()
    assert (await client.delete(f"/api/tasks/{snap['id']}")).status == 204
    assert not work_dir.exists()
    await assert_error(await client.get(f"/api/tasks/{snap['id']}"), 404, "UNKNOWN_TASK")
    assert await client.app[TASKS].store.get(snap["id"]) is None


async def test_queue_positions_and_cancel_queued(client: Any, wav_bytes: bytes) -> None:
    snaps = [await (await upload(client, wav_bytes)).json() for _ in range(3)]
    third = await (await client.get(f"/api/tasks/{snaps[2]['id']}")).json()
    assert third["stage"] == "queued" and third["detail"] in ("2nd in queue", "Next in queue")
    cancelled = await (await client.post(f"/api/tasks/{snaps[1]['id']}/cancel")).json()
    assert cancelled["stage"] == "cancelled"
    assert cancelled["error"]["stage"] == "queued"
    await wait_for_stage(client, snaps[2]["id"], {"complete"})
    after = await (await client.get(f"/api/tasks/{snaps[1]['id']}")).json()
    assert (after["stage"], after["attempt"]) == ("cancelled", 0)


async def test_upload_too_large_removes_partial_file(
    make_client: ClientFactory, wav_bytes: bytes
) -> None:
    client = await make_client(max_upload_bytes=len(wav_bytes) - 1000)

    async def body() -> Any:
        for i in range(0, len(wav_bytes), 8192):
            yield wav_bytes[i : i + 8192]

    resp = await client.post("/api/tasks", data=body(), params={"filename": "big.wav"})
    await assert_error(resp, 413, "FILE_TOO_LARGE")
    page = await (await client.get("/api/tasks")).json()
    (task,) = page["tasks"]
    assert task["stage"] == "failed" and task["error"]["code"] == "FILE_TOO_LARGE"
    work_dir = client.app[TASKS].work_dir(task["id"])
    assert list(work_dir.iterdir()) == []


async def test_declared_too_large_is_refused_before_reading(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_upload_bytes=1000)
    resp = await client.post("/api/tasks", json={"filename": "a.wav", "size": 5000})
    await assert_error(resp, 413, "FILE_TOO_LARGE")


async def test_bad_files_get_codes(client: Any) -> None:
    text = await upload(client, b"hello, this is not audio\n" * 40, filename="notes.wav")
    error = await assert_error(text, 415, "UNSUPPORTED_MEDIA")
    snap = await (await client.get(f"/api/tasks/{error['task_id']}")).json()
    assert snap["stage"] == "failed" and snap["error"]["code"] == "UNSUPPORTED_MEDIA"
    await assert_error(await upload(client, b"", filename="empty.wav"), 415, "UNSUPPORTED_MEDIA")


async def test_filenames_are_cleaned_and_never_used_on_disk(client: Any, wav_bytes: bytes) -> None:
    resp = await upload(client, wav_bytes, filename="../../etc/Grüße 会议.wav")
    snap = await resp.json()
    assert snap["filename"] == "Grüße 会议.wav"
    files = [p.name for p in client.app[TASKS].work_dir(snap["id"]).iterdir()]
    assert files == ["source.wav"]


async def test_errors_have_one_shape(client: Any) -> None:
    await assert_error(await client.get("/api/tasks/0123456789abcdef"), 404, "UNKNOWN_TASK")
    await assert_error(await client.get("/api/nothing"), 404, "NOT_FOUND")
    await assert_error(await client.patch("/api/tasks"), 405, "METHOD_NOT_ALLOWED")
    bad_option = await client.post("/api/tasks", json={"filename": "a", "options": {"x": 1}})
    await assert_error(bad_option, 400, "BAD_REQUEST")
    bad_speakers = await client.post(
        "/api/tasks", json={"filename": "a", "options": {"min_speakers": 3, "max_speakers": 2}}
    )
    await assert_error(bad_speakers, 400, "BAD_REQUEST")
    not_json = await client.post(
        "/api/tasks", data=b"{", headers={"Content-Type": "application/json"}
    )
    await assert_error(not_json, 400, "BAD_REQUEST")
    no_file = await client.post("/api/tasks", data={"language": "en"})
    await assert_error(no_file, 400, "BAD_REQUEST")


async def test_page_is_served_and_revalidated(client: Any) -> None:
    page = await client.get("/")
    assert page.status == 200 and "<title>" in await page.text()
    assert page.headers["Cache-Control"] == "no-cache"
    script = await client.get("/static/app.js")
    assert script.status == 200 and script.headers["Cache-Control"] == "no-cache"
    api = await client.get("/api/health")
    assert "Cache-Control" not in api.headers


async def test_health(client: Any) -> None:
    body = await (await client.get("/api/health")).json()
    assert body["status"] == "ok"
    assert body["workers"] == {"busy": 0, "total": 1}
    assert (body["queue"], body["pipeline"], body["model"]) == (0, "plumbing", "base")
    assert body["retention_days"] is None


async def test_audio_download_supports_range(client: Any, wav_bytes: bytes) -> None:
    snap = await (await upload(client, wav_bytes)).json()
    resp = await client.get(f"/api/tasks/{snap['id']}/audio", headers={"Range": "bytes=4-11"})
    assert resp.status == 206
    assert await resp.read() == wav_bytes[4:12]
    full = await client.get(f"/api/tasks/{snap['id']}/audio")
    assert await full.read() == wav_bytes


async def test_a_cursor_past_sqlites_integers_is_a_bad_request(client: Any) -> None:
    # Found by schemathesis: a 19-digit row number overflowed the query (500).
    cursor = "2026-01-01T00:00:00.000Z_9999999999999999999"
    resp = await client.get("/api/tasks", params={"before": cursor})
    error = await assert_error(resp, 400, "BAD_REQUEST")
    assert error["message"] == "before must be the 'next' of a previous page."
