"""After the run: speaker names, corrections as revisions, If-Match, md and docx exports.

Real server (plumbing pipeline, real worker processes), real SQLite; plumbing gives a 10 s file
five segments and, with num_speakers=2, alternates SPEAKER_00 and SPEAKER_01.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
from docx import Document

from tests.conftest import assert_error, tone_wav, upload, wait_for_stage
from transcriber.jobs.transcripts.edits import named, retime
from transcriber.web.keys import CONFIG, RUNNER, TRANSCRIPTS

WAV = tone_wav(10.0)


async def complete_task(client: Any, **fields: str) -> dict[str, Any]:
    snap = await (await upload(client, WAV, filename="meeting.wav", **fields)).json()
    final: dict[str, Any] = await wait_for_stage(client, snap["id"], {"complete"})
    return final


async def transcript(client: Any, task_id: str, fmt: str = "json", **params: str) -> Any:
    resp = await client.get(f"/api/tasks/{task_id}/transcript", params={"format": fmt, **params})
    assert resp.status == 200, await resp.text()
    return await resp.json() if fmt == "json" else await resp.text()


def revisions(client: Any, task_id: str) -> list[tuple[int, str]]:
    path = client.server.app[CONFIG].db_path
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT revision, source FROM revisions WHERE task_id = ? ORDER BY revision",
            (task_id,),
        ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


async def test_names_in_every_format_and_revision_zero_kept(client: Any) -> None:
    task = await complete_task(client, num_speakers="2")
    tid = task["id"]
    first = await client.get(f"/api/tasks/{tid}/transcript")
    assert first.headers["ETag"] == f'"{tid}-0"'
    body = await first.json()
    assert (body["revision"], body["source"], body["speakers"]) == (
        0,
        "model",
        ["SPEAKER_00", "SPEAKER_01"],
    )
    resp = await client.patch(
        f"/api/tasks/{tid}/speakers",
        json={"SPEAKER_01": "Dana Scully"},
        headers={"If-Match": f'"{tid}-0"'},
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["ETag"] == f'"{tid}-1"'
    edited = await transcript(client, tid)
    assert edited["revision"] == 1 and edited["source"] == "edit"
    assert edited["speakers"] == ["SPEAKER_00", "Dana Scully"]
    assert edited["speaker_names"] == {"SPEAKER_01": "Dana Scully"}
    second = edited["segments"][1]
    assert (second["speaker"], second["speaker_label"]) == ("Dana Scully", "SPEAKER_01")
    assert second["words"][0]["speaker"] == "Dana Scully"
    txt = await transcript(client, tid, "txt")
    assert txt.splitlines()[:2] == [
        "SPEAKER_00: Plumbing segment 1.",
        "Dana Scully: Plumbing segment 2.",
    ]
    srt = await transcript(client, tid, "srt")
    assert "00:00:02,000 --> 00:00:04,000\n[Dana Scully] Plumbing segment 2." in srt
    vtt = await transcript(client, tid, "vtt")
    assert "<v Dana Scully>Plumbing segment 2." in vtt
    tsv = await transcript(client, tid, "tsv")
    assert tsv.splitlines()[2] == "2000\t4000\tDana Scully\tPlumbing segment 2."
    rttm = await (await client.get(f"/api/tasks/{tid}/diarization.rttm")).text()
    assert rttm.splitlines()[1] == f"SPEAKER {tid} 1 2.000 2.000 <NA> <NA> Dana_Scully <NA> <NA>"
    original = await transcript(client, tid, revision="0")
    assert original["segments"][1]["speaker"] == "SPEAKER_01" and original["revision"] == 0
    old_txt = await transcript(client, tid, "txt", revision="0")
    assert "Dana" not in old_txt
    assert revisions(client, tid) == [(0, "model"), (1, "edit")]


async def test_renaming_two_labels_to_one_name_merges_them(client: Any) -> None:
    tid = (await complete_task(client, num_speakers="2"))["id"]
    resp = await client.patch(
        f"/api/tasks/{tid}/speakers", json={"SPEAKER_00": "Dana", "SPEAKER_01": "Dana"}
    )
    assert resp.status == 200
    body = await transcript(client, tid)
    assert body["speakers"] == ["Dana"]
    txt = await transcript(client, tid, "txt")
    assert txt.splitlines() == [
        "Dana: Plumbing segment 1.",
        "Plumbing segment 2.",
        "Plumbing segment 3.",
        "Plumbing segment 4.",
        "Plumbing segment 5.",
    ]
    # null gives a label its own name back
    await client.patch(f"/api/tasks/{tid}/speakers", json={"SPEAKER_00": None})
    assert (await transcript(client, tid))["speakers"] == ["SPEAKER_00", "Dana"]


async def test_segment_text_and_speaker_edits_keep_matching_word_timings(client: Any) -> None:
    task = await complete_task(client, num_speakers="2")
    tid, seq = task["id"], task["seq"]
    resp = await client.patch(
        f"/api/tasks/{tid}/segments/2", json={"text": "  Plumbing   works here. "}
    )
    assert resp.status == 200, await resp.text()
    seg = (await resp.json())["segments"][2]
    assert seg["text"] == "Plumbing works here." and seg["edited"] is True
    assert seg["words_timing"] == "mixed"
    words = [(w["word"], w["start"], w["end"], w.get("estimated", False)) for w in seg["words"]]
    # plumbing's one word spans the whole segment (4-6 s): kept; the new ones share 6-6
    assert words[0] == (" Plumbing", 4.0, 6.0, False)
    assert [w[0] for w in words[1:]] == [" works", " here."] and all(w[3] for w in words[1:])
    snap = await (await client.get(f"/api/tasks/{tid}")).json()
    assert snap["seq"] > seq and snap["detail"] == "Revision 1 saved"
    await client.patch(f"/api/tasks/{tid}/speakers", json={"SPEAKER_01": "Dana"})
    moved = await client.patch(f"/api/tasks/{tid}/segments/0", json={"speaker": "Dana"})
    seg0 = (await moved.json())["segments"][0]
    assert (seg0["speaker"], seg0["speaker_label"]) == ("Dana", "SPEAKER_01")
    assert seg0["words"][0]["speaker"] == "Dana"
    assert revisions(client, tid) == [(0, "model"), (1, "edit"), (2, "edit"), (3, "edit")]
    assert (await transcript(client, tid, revision="0"))["segments"][2]["text"] == (
        "Plumbing segment 3."
    )


def test_retime_keeps_matching_words_and_spreads_the_rest() -> None:
    old = [
        {"word": " Hello", "start": 1.0, "end": 1.4, "probability": 0.9, "speaker": "S"},
        {"word": " wrld", "start": 1.5, "end": 1.9, "probability": 0.5, "speaker": "S"},
        {"word": " again.", "start": 2.0, "end": 2.6, "probability": 0.8, "speaker": "S"},
    ]
    segment = {"start": 1.0, "end": 3.0, "speaker": "S"}
    words, timing = retime(old, "Hello, big world again.", segment)
    assert timing == "mixed"
    assert [(w["word"], w["start"], w["end"]) for w in words] == [
        (" Hello,", 1.0, 1.4),
        (" big", 1.4, 1.7),
        (" world", 1.7, 2.0),
        (" again.", 2.0, 2.6),
    ]
    assert [w.get("estimated", False) for w in words] == [False, True, True, False]
    all_new, timing = retime(old, "Something else", segment)
    assert timing == "spread"
    assert [(w["start"], w["end"]) for w in all_new] == [(1.0, 2.0), (2.0, 3.0)]
    assert retime(old, "hello WRLD again", segment)[1] == "kept"


async def test_stale_if_match_is_412_and_changes_nothing(client: Any) -> None:
    tid = (await complete_task(client, num_speakers="2"))["id"]
    tab_a = await client.patch(
        f"/api/tasks/{tid}/segments/0", json={"text": "Tab A."}, headers={"If-Match": f'"{tid}-0"'}
    )
    assert tab_a.status == 200
    tab_b = await client.patch(
        f"/api/tasks/{tid}/segments/0", json={"text": "Tab B."}, headers={"If-Match": f'"{tid}-0"'}
    )
    error = await assert_error(tab_b, 412, "PRECONDITION_FAILED")
    assert f'"{tid}-1"' in error["detail"]
    assert (await transcript(client, tid))["segments"][0]["text"] == "Tab A."
    assert revisions(client, tid) == [(0, "model"), (1, "edit")]
    star = await client.patch(
        f"/api/tasks/{tid}/segments/0", json={"text": "Tab B."}, headers={"If-Match": "*"}
    )
    assert star.status == 200


async def test_bad_edits_are_refused_and_change_nothing(make_client: Any) -> None:
    client = await make_client(plumbing_stage_seconds=1.5)
    tid = (await complete_task(client, num_speakers="2"))["id"]
    url = f"/api/tasks/{tid}"
    cases = [
        ("speakers", {"SPEAKER_07": "Dana"}, "Unknown speaker label 'SPEAKER_07'."),
        ("speakers", {"SPEAKER_00": "   "}, "A speaker name must be non-empty text."),
        ("speakers", {"SPEAKER_00": "x" * 101}, "A speaker name may be at most 100 characters."),
        ("speakers", ["SPEAKER_00"], 'Send an object of names: {"SPEAKER_01": "Dana"}.'),
        ("segments/5", {"text": "Too far."}, "There is no segment 5."),
        ("segments/0", {"text": ""}, "text must be non-empty, at most 10000 characters."),
        ("segments/0", {"speaker": "Nobody"}, None),
        ("segments/0", {"color": "red"}, None),
        ("segments/-1", {"text": "x"}, "The segment index must be a whole number."),
    ]
    for path, body, message in cases:
        error = await assert_error(
            await client.patch(f"{url}/{path}", json=body), 400, "BAD_REQUEST"
        )
        if message:
            assert error["message"] == message
    bad_json = await client.patch(
        f"{url}/speakers", data=b"{", headers={"Content-Type": "application/json"}
    )
    await assert_error(bad_json, 400, "BAD_REQUEST")
    assert revisions(client, tid) == [(0, "model")]
    assert (await transcript(client, tid))["revision"] == 0
    missing = await client.patch("/api/tasks/nope/speakers", json={"SPEAKER_00": "Dana"})
    await assert_error(missing, 404, "UNKNOWN_TASK")
    running = await (await upload(client, WAV)).json()
    busy = await client.patch(f"/api/tasks/{running['id']}/speakers", json={"SPEAKER_00": "D"})
    await assert_error(busy, 409, "CONFLICT")
    early = await client.get(f"/api/tasks/{running['id']}/transcript")
    await assert_error(early, 409, "NOT_READY")
    assert revisions(client, running["id"]) == []
    await assert_error(
        await client.get(f"{url}/transcript", params={"revision": "9"}), 400, "BAD_REQUEST"
    )


async def test_markdown_and_docx_from_the_latest_revision(client: Any) -> None:
    tid = (await complete_task(client, num_speakers="2"))["id"]
    await client.patch(f"/api/tasks/{tid}/speakers", json={"SPEAKER_01": "Dana *D*"})
    await client.patch(f"/api/tasks/{tid}/segments/1", json={"text": "Edited line."})
    resp = await client.get(
        f"/api/tasks/{tid}/transcript", params={"format": "md", "download": "1"}
    )
    assert resp.headers["Content-Type"].startswith("text/markdown")
    assert resp.headers["Content-Disposition"] == "attachment; filename*=UTF-8''meeting.md"
    md = (await resp.text()).splitlines()
    assert md[0] == "# meeting.wav"
    assert md[2].endswith(" · 0:00:10 · en")
    assert md[4:10] == [
        "**SPEAKER\\_00** \\[0:00:00\\]",
        "",
        "Plumbing segment 1.",
        "",
        "**Dana \\*D\\*** \\[0:00:02\\]",
        "",
    ]
    assert md[10] == "Edited line."
    resp = await client.get(f"/api/tasks/{tid}/transcript", params={"format": "docx"})
    assert resp.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    document = Document(io.BytesIO(await resp.read()))
    paragraphs = document.paragraphs
    assert (paragraphs[0].style.name, paragraphs[0].text) == ("Heading 1", "meeting.wav")
    assert paragraphs[1].text.endswith(" · 0:00:10 · en")
    assert paragraphs[2].text == "SPEAKER_00 [0:00:00]\nPlumbing segment 1."
    assert paragraphs[3].text == "Dana *D* [0:00:02]\nEdited line."
    assert paragraphs[3].runs[0].bold and paragraphs[3].runs[0].text == "Dana *D*"
    assert len(paragraphs) == 2 + 5
    old = await client.get(f"/api/tasks/{tid}/transcript", params={"format": "md", "revision": "0"})
    assert "Dana" not in await old.text()


async def test_control_characters_are_refused_and_stored_ones_still_export(client: Any) -> None:
    tid = (await complete_task(client, num_speakers="2"))["id"]
    text = await client.patch(f"/api/tasks/{tid}/segments/0", json={"text": "a\u0001b"})
    error = await assert_error(text, 400, "BAD_REQUEST")
    assert (error["message"], error["detail"]) == (
        "The text may not contain control characters.",
        "U+0001 at position 1",
    )
    name = await client.patch(f"/api/tasks/{tid}/speakers", json={"SPEAKER_01": "Dana\u0000"})
    error = await assert_error(name, 400, "BAD_REQUEST")
    assert error["detail"] == "U+0000 at position 4"
    # Tabs and line breaks are whitespace: folded, not refused.
    folded = await client.patch(f"/api/tasks/{tid}/segments/2", json={"text": "one\ttwo\nthree"})
    assert (await folded.json())["segments"][2]["text"] == "one two three"
    assert revisions(client, tid) == [(0, "model"), (1, "edit")]

    # A revision stored before the edit refused them (or a model's odd output) still exports.
    def stored(data: dict[str, Any]) -> dict[str, Any]:
        first = {**data["segments"][0], "text": "a\u0001b\u0000c \ufffe end"}
        names = {"SPEAKER_01": "Bell\u0007 Ringer"}
        return {**data, "segments": [first, *data["segments"][1:]], "speaker_names": names}

    await client.server.app[TRANSCRIPTS].change(tid, None, stored)
    for fmt in ("json", "txt", "srt", "vtt", "tsv", "md", "docx"):
        resp = await client.get(f"/api/tasks/{tid}/transcript", params={"format": fmt})
        assert resp.status == 200, (fmt, await resp.text())
    rttm = await client.get(f"/api/tasks/{tid}/diarization.rttm")
    assert "Bell\u0007_Ringer" in await rttm.text()
    resp = await client.get(f"/api/tasks/{tid}/transcript", params={"format": "docx"})
    paragraphs = Document(io.BytesIO(await resp.read())).paragraphs
    assert paragraphs[2].text == "SPEAKER_00 [0:00:00]\nabc  end"
    assert paragraphs[3].text.startswith("Bell Ringer [0:00:02]\n")


async def test_exports_and_edit_answers_are_made_off_the_event_loop(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tid = (await complete_task(client, num_speakers="2"))["id"]
    threads: list[int] = []

    def spy(real: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
        def named(data: dict[str, Any]) -> dict[str, Any]:
            threads.append(threading.get_ident())
            return real(data)

        return named

    monkeypatch.setattr("transcriber.jobs.transcripts.exports.named", spy(named))
    monkeypatch.setattr("transcriber.web.results.named", spy(named))
    monkeypatch.setattr("transcriber.web.edits.named", spy(named))
    for fmt in ("md", "docx", "json"):
        resp = await client.get(f"/api/tasks/{tid}/transcript", params={"format": fmt})
        assert resp.status == 200
    assert (await client.get(f"/api/tasks/{tid}/diarization.rttm")).status == 200
    resp = await client.patch(f"/api/tasks/{tid}/speakers", json={"SPEAKER_01": "Dana"})
    assert (await resp.json())["speaker_names"] == {"SPEAKER_01": "Dana"}
    assert len(threads) == 5 and threading.get_ident() not in threads


async def test_concurrent_edits_are_serialized(client: Any) -> None:
    tid = (await complete_task(client, num_speakers="2"))["id"]
    await transcript(client, tid)  # revision 0 saved

    async def edit(i: int, if_match: str | None) -> int:
        headers = {"If-Match": if_match} if if_match else {}
        resp = await client.patch(
            f"/api/tasks/{tid}/segments/{i}", json={"text": f"Edit {i}."}, headers=headers
        )
        return int(resp.status)

    assert await asyncio.gather(*(edit(i, None) for i in range(5))) == [200] * 5
    assert [r for r, _ in revisions(client, tid)] == [0, 1, 2, 3, 4, 5]
    body = await transcript(client, tid)
    assert [s["text"] for s in body["segments"]] == [f"Edit {i}." for i in range(5)]
    statuses = await asyncio.gather(*(edit(i, f'"{tid}-5"') for i in range(4)))
    assert sorted(statuses) == [200, 412, 412, 412]
    assert client.server.app[TRANSCRIPTS]._locks == {}


MINIMAL = {"Prefer": "return=minimal"}


async def test_prefer_return_minimal_answers_only_what_changed(client: Any) -> None:
    tid = (await complete_task(client, num_speakers="2"))["id"]
    url = f"/api/tasks/{tid}"
    edited = await client.patch(
        f"{url}/segments/1",
        json={"text": "plumbing segment two, corrected", "speaker": "SPEAKER_00"},
        headers={"If-Match": f'"{tid}-0"', **MINIMAL},
    )
    assert edited.status == 200, await edited.text()
    assert (edited.headers["ETag"], edited.headers["Preference-Applied"]) == (
        f'"{tid}-1"',
        "return=minimal",
    )
    assert edited.headers["Vary"] == "Prefer"
    change = await edited.json()
    full = await transcript(client, tid)
    assert change == {
        "revision": 1,
        "source": "edit",
        "speaker_names": {},
        "segments": [{"index": 1, **full["segments"][1]}],
    }
    assert change["segments"][0]["speaker"] == "SPEAKER_00" and change["segments"][0]["edited"]

    # Among other preferences, with parameters; a rename changes no segment: the names do.
    named = await client.patch(
        f"{url}/speakers",
        json={"SPEAKER_00": "Dana"},
        headers={
            "If-Match": edited.headers["ETag"],
            "Prefer": "handling=strict, RETURN=minimal; x",
        },
    )
    assert (named.headers["ETag"], named.headers["Preference-Applied"]) == (
        f'"{tid}-2"',
        "return=minimal",
    )
    assert await named.json() == {
        "revision": 2,
        "source": "edit",
        "speaker_names": {"SPEAKER_00": "Dana"},
        "segments": [],
    }
    moved = await client.patch(f"{url}/segments/0", json={"speaker": "Dana"}, headers=MINIMAL)
    segment = (await moved.json())["segments"][0]
    assert (segment["index"], segment["speaker"], segment["speaker_label"]) == (
        0,
        "Dana",
        "SPEAKER_00",
    )
    assert segment == {"index": 0, **(await transcript(client, tid))["segments"][0]}

    # Without it, or with another return preference, the whole revision as before.
    for headers in ({}, {"Prefer": "return=representation"}, {"Prefer": "respond-async"}):
        whole = await client.patch(f"{url}/speakers", json={"SPEAKER_01": "Eli"}, headers=headers)
        assert "Preference-Applied" not in whole.headers and whole.headers["Vary"] == "Prefer"
        body = await whole.json()
        # (An edit's answer has always had empty timings; the GET has the run's.)
        assert body | {"timings": {}} == await transcript(client, tid) | {"timings": {}}
        assert len(body["segments"]) == 5
    stale = await client.patch(
        f"{url}/speakers", json={"SPEAKER_01": "Fay"}, headers={"If-Match": f'"{tid}-1"', **MINIMAL}
    )
    await assert_error(stale, 412, "PRECONDITION_FAILED")


async def test_no_stale_revision_after_rediarize_delete_or_retention(make_client: Any) -> None:
    client = await make_client(plumbing_stage_seconds=0.5)
    app = client.server.app
    kept = app[TRANSCRIPTS]._latest
    tid = (await complete_task(client, num_speakers="2"))["id"]
    url = f"/api/tasks/{tid}"
    await client.patch(f"{url}/segments/2", json={"text": "Edited by hand."}, headers=MINIMAL)
    await client.patch(f"{url}/speakers", json={"SPEAKER_00": "Dana"}, headers=MINIMAL)
    assert kept[tid].revision == 2
    # Re-diarized: the run's output becomes revision 3 (text edit carried, names reset).
    assert (await client.post(f"{url}/rediarize", json={"num_speakers": 2})).status == 202
    assert (await transcript(client, tid))["revision"] == 2  # until the run completes
    await wait_for_stage(client, tid, {"complete"})
    body = await transcript(client, tid)
    assert (body["revision"], body["source"], body["speaker_names"]) == (3, "rediarize", {})
    assert body["segments"][2]["text"] == "Edited by hand."
    edited = await client.patch(f"{url}/segments/3", json={"text": "Again."}, headers=MINIMAL)
    assert (await edited.json())["revision"] == 4 and kept[tid].revision == 4
    assert revisions(client, tid)[-1] == (4, "edit")

    # Deleted: forgotten, and nothing answers for it.
    assert (await client.delete(url)).status == 204
    assert tid not in kept
    await assert_error(await client.get(f"{url}/transcript"), 404, "UNKNOWN_TASK")
    await assert_error(
        await client.patch(f"{url}/segments/0", json={"text": "x"}, headers=MINIMAL),
        404,
        "UNKNOWN_TASK",
    )
    # Retention's deletion (Runner.expire) too.
    other = (await complete_task(client))["id"]
    await client.patch(f"/api/tasks/{other}/segments/0", json={"text": "Kept."}, headers=MINIMAL)
    assert other in kept
    assert await app[RUNNER].expire(other, "9999-12-31T00:00:00.000Z")
    assert other not in kept
    await assert_error(await client.get(f"/api/tasks/{other}/transcript"), 404, "UNKNOWN_TASK")
