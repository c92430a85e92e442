"""The page after the run, in Chromium against the real server (plumbing pipeline): rename a
speaker from the timeline, correct a line, search and open a hit at its time, re-run
diarization, see another tab's edit live, and be offered a reload on a stale edit (412)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, expect

from .browser import collect_errors, launch
from .conftest import tone_wav
from .serverproc import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"TRANSCRIBER_PLUMBING_STAGE_SECONDS": "0.5"}
    proc = ServerProcess(tmp_path / "data", "--pipeline", "plumbing", env=env).start()
    yield proc
    proc.stop()


def open_page(browser: Browser, url: str, errors: list[str]) -> Page:
    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    collect_errors(page, errors)
    page.goto(url)
    return page


def api(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def upload_complete(page: Page, tmp_path: Path, speakers: int = 2) -> str:
    wav = tmp_path / "meeting.wav"
    wav.write_bytes(tone_wav(seconds=10))
    page.get_by_label("Exactly").fill(str(speakers))
    page.get_by_label("Names and words to expect").fill("Zyxcorp Dana")
    page.locator("#files").set_input_files(str(wav))
    expect(page.locator(".transcript .line")).to_have_count(5)
    task_id = page.evaluate("window.location.hash").split("=")[1]
    return str(task_id)


def answer(page: Page, text: str) -> None:
    def accept(dialog: Dialog) -> None:
        dialog.accept(text)

    page.once("dialog", accept)


def test_rename_correct_search_rediarize(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    errors: list[str] = []
    page = open_page(browser, server.url, errors)
    tid = upload_complete(page, tmp_path)
    lines = page.locator(".transcript .line")
    answer(page, "Dana")
    page.locator(".lane-label").get_by_role("button", name="Rename Speaker 2").click()
    expect(lines.nth(1).locator(".speaker")).to_have_text("Dana")
    expect(page.locator(".lane-label").nth(1)).to_contain_text("Dana")
    assert api(f"{server.url}/api/tasks/{tid}")["options"]["hotwords"] == "Zyxcorp Dana"
    body = api(f"{server.url}/api/tasks/{tid}/transcript")
    assert body["speaker_names"] == {"SPEAKER_01": "Dana"} and body["revision"] == 1

    # The page shows its edit from the answer alone (only what changed): the transcript the
    # edit's task update makes it load again is held back meanwhile.
    held: list[Route] = []
    reload = re.compile(r"/api/tasks/[^/]+/transcript\?")

    def hold(route: Route) -> None:
        held.append(route)

    page.route(reload, hold)
    answer(page, "Budget for Zyxcorp.")
    with page.expect_response(lambda r: r.request.method == "PATCH") as patched:
        lines.nth(2).get_by_role("button", name="Correct the line at 0:04").click()
    assert patched.value.headers.get("preference-applied") == "return=minimal"
    expect(lines.nth(2).locator(".text")).to_have_text("Budget for Zyxcorp.")
    expect(lines.nth(1).locator(".speaker")).to_have_text("Dana")
    for route in held:
        route.continue_()
    page.unroute(reload, hold)
    assert api(f"{server.url}/api/tasks/{tid}/transcript")["segments"][2]["text"] == (
        "Budget for Zyxcorp."
    )

    page.get_by_role("searchbox", name="Search transcripts").fill("zyxcorp")
    page.get_by_role("searchbox", name="Search transcripts").press("Enter")
    hit = page.get_by_role("list", name="Search results").get_by_role("button")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text("Zyxcorp")
    hit.click()
    expect(lines.nth(2)).to_have_attribute("aria-current", "true")
    played_from = page.evaluate("document.querySelector('audio').currentTime")
    assert played_from == pytest.approx(4.0, abs=0.5)

    expect(page.locator(".rediarize")).to_contain_text("speaker names and moved lines are reset")
    page.get_by_label("Number of speakers (empty: detect)").fill("1")
    page.get_by_role("button", name="Re-run diarization").click()
    expect(page.locator(".transcript .line .speaker.turn, .transcript .line.turn")).to_have_count(1)
    expect(lines.nth(2).locator(".text")).to_have_text("Budget for Zyxcorp.")
    expect(lines.first.locator(".speaker")).to_have_text("Speaker 1")
    after = api(f"{server.url}/api/tasks/{tid}/transcript")
    assert (after["source"], after["speakers"]) == ("rediarize", ["SPEAKER_00"])
    assert not errors, errors


def test_other_tab_live_and_stale_edit_offers_reload(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    errors: list[str] = []
    first = open_page(browser, server.url, errors)
    tid = upload_complete(first, tmp_path)
    second = open_page(browser, f"{server.url}/#task={tid}", errors)
    expect(second.locator(".transcript .line")).to_have_count(5)
    answer(second, "Changed in the second tab.")
    second.locator(".transcript .line").nth(0).get_by_role(
        "button", name="Correct the line at 0:00"
    ).click()
    expect(first.locator(".transcript .line .text").first).to_have_text(
        "Changed in the second tab."
    )

    def edit_elsewhere_then_accept(dialog: Dialog) -> None:
        # While this tab's prompt is open, someone else saves a revision.
        api(f"{server.url}/api/tasks/{tid}/segments/1", "PATCH", {"text": "Saved elsewhere."})
        dialog.accept("Stale edit.")

    first.once("dialog", edit_elsewhere_then_accept)
    first.locator(".transcript .line").nth(1).get_by_role(
        "button", name="Correct the line at 0:02"
    ).click()
    alert = first.get_by_role("alert")
    expect(alert).to_contain_text("changed in another tab")
    assert api(f"{server.url}/api/tasks/{tid}/transcript")["segments"][1]["text"] == (
        "Saved elsewhere."
    )
    first.get_by_role("button", name="Reload the transcript").click()
    expect(first.locator(".transcript .line .text").nth(1)).to_have_text("Saved elsewhere.")
    assert not errors, errors


def test_speakers_are_numbered_as_they_appear_and_counted_alike(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    """A label diarization found that keeps no line (SPEAKER_00 below, its lines moved away)
    takes no number: the page names the speakers it shows 1 to N, in order of appearance."""
    errors: list[str] = []
    page = open_page(browser, server.url, errors)
    tid = upload_complete(page, tmp_path, speakers=3)  # lines: 00, 01, 02, 00, 01
    for index in (0, 3):
        api(f"{server.url}/api/tasks/{tid}/segments/{index}", "PATCH", {"speaker": "SPEAKER_02"})
    expect(page.locator("#result .meta")).to_contain_text("· 2 speakers ·")  # it followed
    expect(page.locator(".lane-label")).to_have_text(["Speaker 1", "Speaker 2"])
    speakers = page.locator(".transcript .line .speaker")
    expect(speakers).to_have_text(["Speaker 1", "Speaker 2", "Speaker 1", "Speaker 1", "Speaker 2"])
    body = api(f"{server.url}/api/tasks/{tid}/transcript")
    assert body["speakers"] == ["SPEAKER_02", "SPEAKER_01"]
    with urllib.request.urlopen(f"{server.url}/api/tasks/{tid}/diarization.rttm") as resp:
        rttm = resp.read().decode()
    assert sorted({line.split()[7] for line in rttm.splitlines()}) == [
        "SPEAKER_00",
        "SPEAKER_01",
        "SPEAKER_02",
    ]
    assert not errors, errors
