"""The web page in a real Chromium against the real server process: upload to Complete, a server
that goes away and comes back, a proxy that refuses WebSockets, and an error with its detail.

Elements are found by role and name, as a person with a screen reader would find them. What a
task card showed over time is recorded by the tests' own observer (SEEN), not by the page;
the page's only debug hook is window.__transcriber: the settings and its last connection attempts.
Screenshots of each state go to docs/screenshots/.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from transcriber.formats import javascript as formats_javascript
from transcriber.protocol.stages import Stage, javascript

from .browser import collect_errors, launch
from .conftest import tone_wav
from .serverproc import ROOT, ServerProcess, Switch, running_proxy

pytestmark = pytest.mark.browser

# The README's screenshots are refreshed with UPDATE_SCREENSHOTS=1; otherwise they go to a
# temporary folder, so a test run leaves the checkout as it was.
SHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "transcriber-screenshots"
)
WORK_STAGES = ["Queued", "Transcribing", "Aligning", "Diarizing", "Complete"]
# Installed in every page before its scripts run: per task id, every distinct
# [stage, percent, sub-line] its card showed, in order.
SEEN = """(() => {
  window.seen = {};
  const record = () => {
    for (const card of document.querySelectorAll("#task-list > li[data-id]")) {
      const text = (selector) => card.querySelector(selector)?.textContent ?? "";
      const detail = card.querySelector(".detail");
      const pct = Number.parseInt(text(".pct"), 10);
      const shown = [text(".stage"), pct, detail && !detail.hidden ? detail.textContent : ""];
      const past = (window.seen[card.dataset.id] ||= []);
      if (past.at(-1)?.join("|") !== shown.join("|")) past.push(shown);
    }
  };
  const options = { subtree: true, childList: true, characterData: true, attributes: true };
  new MutationObserver(record).observe(document, { ...options, attributeFilter: ["hidden"] });
})()"""

StartServer = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.add_init_script(SEEN)
    page.set_default_timeout(15_000)
    errors: list[str] = []
    collect_errors(page, errors)
    yield page
    context.close()
    assert not errors, f"uncaught errors or CSP violations in the page: {errors}"


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    servers: list[ServerProcess] = []

    def start(*args: str, port: int | None = None, stage_seconds: float = 1.0) -> ServerProcess:
        env = {"TRANSCRIBER_PLUMBING_STAGE_SECONDS": str(stage_seconds)}
        server = ServerProcess(
            tmp_path / "data", "--pipeline", "plumbing", *args, port=port, env=env
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


@pytest.fixture
def wav_file(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    path.write_bytes(tone_wav(seconds=10))
    return path


def shot(page: Page, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / name, full_page=full_page)


def connection(page: Page) -> Locator:
    return page.get_by_role("status", name="Connection")


def mode(page: Page) -> Locator:
    return page.get_by_role("status", name="Mode")


def task_card(page: Page, filename: str) -> Locator:
    return page.get_by_role("listitem", name=filename)


def task_id(card: Locator) -> str:
    value = card.get_attribute("data-id")
    assert value
    return value


def upload(page: Page, *files: Path) -> None:
    page.get_by_label("Choose audio files").set_input_files([str(f) for f in files])


def shown(page: Page, tid: str) -> list[tuple[str, int, str]]:
    """Every distinct (stage, percent, sub-line) the task's card showed, in order."""
    rows: list[list[Any]] = page.evaluate("(tid) => window.seen[tid] || []", tid)
    return [(stage, pct, detail) for stage, pct, detail in rows]


def shown_stages(page: Page, tid: str) -> list[str]:
    """The stage names the task's card showed, in order."""
    stages: list[str] = []
    for stage, _, _ in shown(page, tid):
        if not stages or stages[-1] != stage:
            stages.append(stage)
    return stages


LISTEN = """() => {
  const region = document.getElementById("announcer");
  window.heard = [];
  new MutationObserver(() => window.heard.push(region.textContent)).observe(
    region, { childList: true, subtree: true, characterData: true });
}"""


def listen(page: Page) -> None:
    """Record what the page's aria-live region says from now on (in window.heard)."""
    page.evaluate(LISTEN)


def heard(page: Page) -> list[str]:
    result: list[str] = page.evaluate("window.heard")
    return result


def attempts(page: Page, after: int = 0) -> list[dict[str, Any]]:
    """The connection attempts the page remembers (its last 50), those numbered above `after`."""
    result: list[dict[str, Any]] = page.evaluate(
        "(after) => window.__transcriber.attempts.filter((a) => a.n > after)", after
    )
    return result


def api_get(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


# -- 0. the stage names come from the enum --------------------------------------------------------


def test_stages_module_is_generated_from_the_enum() -> None:
    """static/stages.js is what the Stage enum generates, and no other module spells a stage."""
    static = ROOT / "static"
    assert (static / "stages.js").read_text() == javascript(), (
        "static/stages.js is stale: python -m transcriber.protocol.stages --js > static/stages.js"
    )
    for module in sorted(static.glob("*.js")):
        if module.name == "stages.js":
            continue
        text = module.read_text()
        spelled = [s for s in Stage for word in (s.value, s.label) if f'"{word}"' in text]
        assert not spelled, f"{module.name} spells stages itself: {spelled}"


def test_formats_module_is_generated_from_the_table() -> None:
    """static/formats.js lists the formats of transcriber/formats, and no other module of the
    page lists them itself."""
    static = ROOT / "static"
    assert (static / "formats.js").read_text() == formats_javascript(), (
        "static/formats.js is stale: python -m transcriber.formats --js > static/formats.js"
    )
    for module in sorted(static.glob("*.js")):
        if module.name != "formats.js":
            assert '["docx"' not in module.read_text(), f"{module.name} lists formats itself"


# -- 1. upload to Complete ------------------------------------------------------------------------


def test_upload_to_complete(page: Page, start_server: StartServer, wav_file: Path) -> None:
    token = "page-test-token"
    server = start_server("--token", token)
    page.goto(server.url)
    # The server wants a token: the page asks for it once, and keeps it out of every URL.
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="New transcription")).to_be_hidden()
    page.get_by_label("Access token").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That token is not right.")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="New transcription")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "transcriber_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and token not in cookie["value"]
    expect(connection(page)).to_have_text("Connected")
    expect(mode(page)).to_have_text("Live")
    expect(page.get_by_role("button", name="Reconnect")).to_be_hidden()

    page.get_by_label("Language").select_option(label="English")
    page.get_by_label("At most").fill("3")
    # Slow the upload down so the Uploading percentage can be seen moving.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    throttle = {"offline": False, "latency": 0, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": 80_000})
    listen(page)
    upload(page, wav_file)

    card = task_card(page, "tone.wav")
    expect(card.get_by_text("Uploading", exact=True)).to_be_visible()
    page.wait_for_function(
        """() => {
          const bar = document.querySelector('[data-stage="uploading"] [role=progressbar]');
          const pct = bar && Number(bar.getAttribute('aria-valuenow'));
          return pct >= 20 && pct < 100;
        }"""
    )
    expect(card).to_contain_text("Uploaded")
    shot(page, "upload-in-progress.png")
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": -1})

    expect(card.get_by_text("Complete", exact=True)).to_be_visible(timeout=30_000)
    expect(card.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(card).to_contain_text("100%")
    tid = task_id(card)
    assert shown_stages(page, tid) == ["Uploading", *WORK_STAGES]
    history = shown(page, tid)
    uploading = [pct for stage, pct, _ in history if stage == "Uploading"]
    assert any(0 < pct < 100 for pct in uploading), history
    work = [pct for stage, pct, _ in history if stage != "Uploading"]
    assert work == sorted(work), f"progress went down: {history}"
    ranges = {"Transcribing": (0, 70), "Aligning": (70, 80), "Diarizing": (80, 100)}
    for stage, pct, _ in history:
        if stage in ranges:
            low, high = ranges[stage]
            assert low <= pct <= high, (stage, pct)
    assert any(detail.startswith("Plumbing step") for _, _, detail in history), history
    assert heard(page) == [f"tone.wav: {stage}" for stage in WORK_STAGES]

    # The options reached the server.
    snap = api_get(f"{server.url}/api/tasks/{tid}", token)
    assert snap["options"]["language"] == "en"
    assert snap["options"]["max_speakers"] == 3

    result = page.get_by_role("region", name="tone.wav")
    lines = result.get_by_role("list", name="Transcript").get_by_role("listitem")
    expect(lines).to_have_count(5)
    expect(lines.nth(0)).to_contain_text("0:00")
    expect(lines.nth(0)).to_contain_text("Speaker 1")
    expect(lines.nth(0)).to_contain_text("Plumbing segment 1.")
    expect(lines.nth(4)).to_contain_text("0:08")
    timeline = result.get_by_role("group", name="Speaker timeline")
    expect(timeline.locator(".block")).to_have_count(1)
    expect(timeline.get_by_role("button", name="Speaker 1, 0:00 to 0:10")).to_be_visible()
    expect(timeline.get_by_role("button", name="Rename Speaker 1")).to_be_visible()

    audio = result.locator("audio")
    src = audio.get_attribute("src")
    assert src == f"/api/tasks/{tid}/audio"
    ranged = page.request.get(server.url + src, headers={"Range": "bytes=0-99"})
    assert ranged.status == 206 and len(ranged.body()) == 100
    # From the keyboard: a line's time button plays from there and the line is highlighted.
    lines.nth(2).get_by_role("button", name="Play from 0:04").focus()
    page.keyboard.press("Enter")
    expect(lines.nth(2)).to_have_attribute("aria-current", "true")
    assert page.evaluate("document.querySelector('audio').currentTime") == pytest.approx(4, abs=1)
    # With the mouse: a timeline block plays from its start.
    timeline.get_by_role("button", name="Speaker 1, 0:00 to 0:10").click()
    expect(lines.nth(0)).to_have_attribute("aria-current", "true")
    expect(lines.nth(2)).not_to_have_attribute("aria-current", "true")
    page.evaluate(
        "(() => { const a = document.querySelector('audio'); a.pause(); a.currentTime = 4.5 })()"
    )
    expect(lines.nth(2)).to_have_attribute("aria-current", "true")

    expected = {
        "JSON": '"segments"',
        "TXT": "SPEAKER_00: Plumbing segment 1.",
        "SRT": "00:00:00,000 --> 00:00:02,000",
        "VTT": "WEBVTT",
        "TSV": "start\tend\tspeaker\ttext",
        "RTTM": f"SPEAKER {tid} 1 0.000 10.000",
    }
    downloads = result.get_by_role("navigation", name="Download")
    for name, text in expected.items():
        href = downloads.get_by_role("link", name=name, exact=True).get_attribute("href")
        assert href is not None and "token" not in href
        response = page.request.get(server.url + href)
        assert response.status == 200, (name, response.text())
        assert text in response.text(), (name, response.text()[:200])
    # Without the session cookie the API refuses: the page really signed in.
    stranger = page.context.browser.new_context()  # type: ignore[union-attr]
    assert stranger.request.get(f"{server.url}/api/tasks").status == 401
    stranger.close()
    assert token not in page.url
    expect(page.locator("#retention")).to_be_hidden()  # no --retention-days: nothing is deleted
    shot(page, "complete-with-timeline.png")

    # Past tasks survive a reload; the selected task comes back from the address.
    page.reload()
    expect(task_card(page, "tone.wav").get_by_text("Complete", exact=True)).to_be_visible()
    expect(lines).to_have_count(5)
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("region", name="tone.wav").scroll_into_view_if_needed()
    shot(page, "complete-phone.png")
    page.set_viewport_size({"width": 1100, "height": 760})
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.request.get(f"{server.url}/api/tasks").status == 401


# -- 2. the server goes away and comes back -------------------------------------------------------


def test_server_stopped_and_restarted(
    page: Page, start_server: StartServer, wav_file: Path, tmp_path: Path
) -> None:
    server = start_server(stage_seconds=3)
    page.goto(f"{server.url}/?ws_retry=3")
    expect(connection(page)).to_have_text("Connected")
    upload(page, wav_file)
    card = task_card(page, "tone.wav")
    expect(card.get_by_text("Transcribing", exact=True)).to_be_visible(timeout=20_000)
    tid = task_id(card)

    server.stop()
    expect(connection(page)).to_have_text("Connecting", timeout=5_000)
    expect(mode(page)).to_have_text("Live")
    expect(connection(page)).to_have_text("Disconnected", timeout=30_000)
    expect(mode(page)).to_have_text("Polling")
    reconnect = page.get_by_role("button", name="Reconnect")
    expect(reconnect).to_be_visible()

    tried = attempts(page)
    assert tried[0]["kind"] == "initial" and tried[0]["outcome"].startswith("lost")
    backoff = [a for a in tried if a["kind"] == "reconnect"]
    assert len(backoff) == 5, tried
    assert all(a["outcome"].startswith("failed") for a in backoff), tried
    # The server said it was going away (1001): the first attempt waits a random time of up to
    # 3 s, so a thousand tabs do not all come back at once (bench/bench_reconnect.py); and the
    # page never starts two attempts within 1 s of each other.
    assert tried[0]["outcome"] == "lost (going away)", tried
    immediate = max(tried[0]["ended"], tried[0]["at"] + 1.0)
    assert -0.05 <= backoff[0]["at"] - immediate < 3.5, tried
    for before, after, wait in zip(backoff[:-1], backoff[1:], [1, 2, 4, 8], strict=True):
        waited = after["at"] - before["ended"]
        assert wait * 0.98 <= waited <= wait * 1.1 + 0.5, (wait, waited, tried)
    expect(page.get_by_text("The server is not answering.")).to_be_visible()
    shot(page, "disconnected.png")

    # Pressing Reconnect tries at once; with the server still down it stays Disconnected.
    last = attempts(page)[-1]["n"]
    reconnect.click()
    expect(connection(page)).to_have_text("Disconnected")
    assert any(a["kind"] == "manual" for a in attempts(page, after=last))
    # The browser's `online` event tries at once too.
    last = attempts(page)[-1]["n"]
    page.context.set_offline(True)
    page.context.set_offline(False)
    page.wait_for_function(
        f"() => window.__transcriber.attempts.some((a) => a.n > {last} && a.kind === 'online')"
    )
    expect(connection(page)).to_have_text("Disconnected")

    start_server(port=server.port, stage_seconds=3)
    expect(connection(page)).to_have_text("Connected", timeout=20_000)
    expect(mode(page)).to_have_text("Live")
    expect(reconnect).to_be_hidden()
    expect(card.get_by_text("Complete", exact=True)).to_be_visible(timeout=40_000)
    expect(card).to_contain_text("100%")
    stages = shown_stages(page, tid)
    assert stages[-1] == "Complete" and "Transcribing" in stages, stages
    snap = api_get(f"{server.url}/api/tasks/{tid}")
    assert snap["stage"] == "complete" and snap["attempt"] == 2
    result = page.get_by_role("region", name="tone.wav")
    expect(result.get_by_role("list", name="Transcript").get_by_role("listitem")).to_have_count(5)


# -- 3. a proxy that refuses WebSockets -----------------------------------------------------------


@pytest.fixture
def proxy(start_server: StartServer, tmp_path: Path) -> Iterator[tuple[str, Switch]]:
    server = start_server("--heartbeat", "1", stage_seconds=1)
    yield from running_proxy(server.url, tmp_path / "proxy.log")


DROP = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "audio/wav" }));
  const zone = document.getElementById("drop");
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = { dataTransfer: data, bubbles: true, cancelable: true };
    zone.dispatchEvent(new DragEvent(type, init));
  }
}"""


def test_websocket_refused_falls_back_to_polling(
    page: Page, proxy: tuple[str, Callable[[str], None]]
) -> None:
    url, switch = proxy
    page.goto(f"{url}/?ws_backoff=0,0.2,0.4,0.8,1.6&ws_retry=2")
    expect(connection(page)).to_have_text("Connected")
    expect(mode(page)).to_have_text("Live")

    # A socket that goes silent (heartbeat 1 s here) is dead after 2 x 1 + 5 s: reconnect.
    switch("freeze")
    frozen_at = page.evaluate("performance.now() / 1000")
    page.wait_for_function(
        "() => window.__transcriber.attempts.some((a) => a.n === 2 && a.outcome === 'hello')",
        timeout=15_000,
    )
    first, second = attempts(page)
    assert (first["n"], second["n"]) == (1, 2), (first, second)
    assert first["outcome"] == "lost (dead)", first
    assert 6.5 <= first["ended"] - frozen_at <= 9, (frozen_at, first)
    assert second["kind"] == "reconnect" and second["at"] - first["ended"] < 0.5
    expect(connection(page)).to_have_text("Connected")

    # Upgrades refused: five quick attempts, then Disconnected and Polling.
    switch("403")
    expect(connection(page)).to_have_text("Disconnected", timeout=15_000)
    expect(mode(page)).to_have_text("Polling")
    expect(page.get_by_text("Live updates are not reaching this page")).to_be_visible()
    backoff = [a for a in attempts(page) if a["kind"] == "reconnect"][1:]
    assert len(backoff) == 5 and all(a["outcome"].startswith("failed") for a in backoff)

    # A file dropped on the page is followed to Complete over long-polling alone.
    switch("502")
    page.evaluate(DROP, ["dropped.wav", base64.b64encode(tone_wav(seconds=10)).decode()])
    card = task_card(page, "dropped.wav")
    expect(card.get_by_text("Transcribing", exact=True)).to_be_visible(timeout=20_000)
    expect(card).to_contain_text("Plumbing step")
    shot(page, "polling.png")
    expect(card.get_by_text("Complete", exact=True)).to_be_visible(timeout=30_000)
    expect(card).to_contain_text("100%")
    expect(mode(page)).to_have_text("Polling")
    tid = task_id(card)
    stages = shown_stages(page, tid)
    assert stages[0] == "Uploading" and stages[-1] == "Complete", stages
    assert set(stages) <= {"Uploading", *WORK_STAGES}, stages
    background = [a for a in attempts(page) if a["kind"] == "background"]
    assert background and all(a["outcome"].startswith("failed") for a in background)
    result = page.get_by_role("region", name="dropped.wav")
    expect(result.get_by_role("list", name="Transcript").get_by_role("listitem")).to_have_count(5)

    switch("allow")
    expect(connection(page)).to_have_text("Connected", timeout=10_000)
    expect(mode(page)).to_have_text("Live")
    assert attempts(page)[-1]["kind"] == "background"
    assert attempts(page)[-1]["outcome"] == "hello"


# -- 4. an error, and Cancel / Retry --------------------------------------------------------------


def test_error_detail_and_cancel_retry(
    page: Page, start_server: StartServer, wav_file: Path, tmp_path: Path
) -> None:
    server = start_server(stage_seconds=2)
    page.goto(server.url)
    expect(connection(page)).to_have_text("Connected")

    notes = tmp_path / "notes.wav"
    notes.write_text("These are meeting notes, not a recording.\n")
    listen(page)
    upload(page, notes, wav_file)  # two files in one pick
    card = task_card(page, "notes.wav")
    expect(card.get_by_text("Failed", exact=True)).to_be_visible()
    message = "This file is not audio or video that the server can read."
    expect(card.get_by_text(message)).to_be_visible()
    code = card.get_by_text("UNSUPPORTED_MEDIA", exact=True)
    expect(code).to_be_hidden()
    card.get_by_text("Technical details").click()
    expect(code).to_be_visible()
    expect(card.get_by_text("InvalidDataError", exact=False)).to_be_visible()
    expect(card.get_by_text("Uploading", exact=True)).to_be_visible()  # the stage it failed in
    # Nothing to retry without a whole audio file; the way out is a new upload.
    expect(card.get_by_role("button", name="Retry")).to_have_count(0)
    expect(card.get_by_role("button", name="Cancel")).to_have_count(0)
    assert "notes.wav: Failed" in heard(page)
    shot(page, "error-expanded.png", full_page=True)

    tone = task_card(page, "tone.wav")
    expect(tone.get_by_text("Transcribing", exact=True)).to_be_visible(timeout=20_000)
    tone.get_by_role("button", name="Cancel").click()
    expect(tone.get_by_text("Cancelled", exact=True)).to_be_visible()
    expect(tone.get_by_role("button", name="Cancel")).to_be_hidden()
    tone.get_by_role("button", name="Retry").click()
    expect(tone.get_by_text("Complete", exact=True)).to_be_visible(timeout=30_000)
    tid = task_id(tone)
    stages = shown_stages(page, tid)
    assert stages[stages.index("Cancelled") + 1 :][-1] == "Complete", stages
    assert "Queued" in stages[stages.index("Cancelled") :], stages


@pytest.mark.slow
def test_real_model_upload_to_complete(page: Page, tmp_path: Path) -> None:
    """The whole way on the real models: tiny.en, Whisper alignment, pyannote diarization."""
    server = ServerProcess(tmp_path / "data", "--model", "tiny.en", "--device", "cpu").start()
    try:
        page.goto(server.url)
        expect(connection(page)).to_have_text("Connected")
        upload(page, ROOT / "tests" / "data" / "voices.wav")
        card = task_card(page, "voices.wav")
        expect(card.get_by_text("Complete", exact=True)).to_be_visible(timeout=600_000)
        tid = task_id(card)
        assert shown_stages(page, tid) == ["Uploading", *WORK_STAGES]
        history = shown(page, tid)
        details = [detail for _, _, detail in history]
        assert any(d.startswith("Segment ") for d in details), details
        assert any(d.startswith("Speaker embeddings") for d in details), details
        result = page.get_by_role("region", name="voices.wav")
        lines = result.get_by_role("list", name="Transcript").get_by_role("listitem")
        expect(lines.first).to_contain_text("Good morning, everyone.")
        expect(lines.first).to_contain_text("Speaker 1")
        expect(result).to_contain_text("Speaker 3")
        timeline = result.get_by_role("group", name="Speaker timeline")
        expect(timeline.locator(".lane-label")).to_have_count(3)
        shot(page, "complete-real-model.png", full_page=True)
    finally:
        server.stop()


# -- 6. an uploaded page is never a page on this origin ---------------------------------------


@pytest.mark.parametrize(
    ("name", "page_source"),
    [
        ("x.html", "<html><body><script src='{js}'></script></body></html>"),
        ("x.svg", "<svg xmlns='http://www.w3.org/2000/svg'><script href='{js}'/></svg>"),
    ],
)
def test_uploaded_html_or_svg_never_runs(
    page: Page, start_server: StartServer, name: str, page_source: str
) -> None:
    """The stored-XSS chain: an uploaded page whose script is another upload, both on this
    origin (so CSP's 'self' would let the script run if either were served as what its name
    says). Served as attachments of unknown bytes with nosniff, nothing runs."""
    server = start_server()
    page.goto(server.url)
    expect(connection(page)).to_have_text("Connected")

    def upload_bytes(filename: str, body: bytes) -> str:
        file = {"name": filename, "mimeType": "text/plain", "buffer": body}
        made = page.request.post(f"{server.url}/api/tasks", multipart={"file": file})
        return str(made.json()["error"]["task_id"])  # refused by the probe; the bytes are kept

    evil = upload_bytes("evil.js", b"document.title='pwned'")
    script = f"/api/tasks/{evil}/audio"
    url = (
        f"{server.url}/api/tasks/{upload_bytes(name, page_source.format(js=script).encode())}/audio"
    )
    with (
        page.expect_download() as download,
        pytest.raises(Exception, match=r"Download is starting|ERR_ABORTED"),
    ):
        page.goto(url)
    assert download.value.suggested_filename == name
    assert page.title() != "pwned"
    # Not even as a script of this server's own page: the browser refuses unknown bytes.
    page.goto(server.url)
    page.evaluate(
        "(src) => document.head.append(Object.assign(document.createElement('script'), {src}))",
        script,
    )
    page.wait_for_timeout(500)
    assert page.title() == "Transcriber"


# -- 7. the list pages, a task deleted elsewhere goes, an error frame is shown --------------------


def test_show_more_deleted_elsewhere_and_error_frames(
    page: Page, start_server: StartServer
) -> None:
    server = start_server("--retention-days", "30")
    ids = []
    for index in range(55):
        made = page.request.post(f"{server.url}/api/tasks", data={"filename": f"f{index:02d}.wav"})
        ids.append(made.json()["id"])
    # The test keeps a handle on the page's sockets, to speak out of turn on one.
    page.add_init_script(
        """(() => {
          const Native = window.WebSocket;
          window.sockets = [];
          window.WebSocket = function (...args) {
            const ws = new Native(...args);
            window.sockets.push(ws);
            return ws;
          };
          Object.assign(window.WebSocket, Native);
          window.WebSocket.prototype = Native.prototype;
        })()"""
    )
    page.goto(server.url)
    expect(connection(page)).to_have_text("Connected")
    cards = page.locator("#task-list > li[data-id]")
    expect(cards).to_have_count(50)
    expect(task_card(page, "f54.wav")).to_be_visible()
    expect(task_card(page, "f00.wav")).to_have_count(0)
    # With --retention-days the list says that finished tasks go (the others never show it).
    retention = page.locator("#retention")
    expect(retention).to_be_visible()
    expect(retention).to_have_text("Finished tasks are deleted 30 days after their last change.")
    more = page.get_by_role("button", name="Show more")
    more.click()
    expect(cards).to_have_count(55)
    expect(task_card(page, "f00.wav")).to_be_visible()
    expect(more).to_be_hidden()

    # Deleted in another tab (or with curl): the card goes without a reload.
    page.request.delete(f"{server.url}/api/tasks/{ids[54]}")
    expect(task_card(page, "f54.wav")).to_have_count(0)
    expect(cards).to_have_count(54)

    # An error frame from the server is shown, not dropped; the connection stays up.
    page.evaluate("window.sockets.at(-1).send('not json')")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The message could not be understood.")
    alert.get_by_text("Technical details").click()
    expect(alert).to_contain_text("BAD_MESSAGE")
    expect(connection(page)).to_have_text("Connected")
