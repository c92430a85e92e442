"""The transcript as it is decoded, on the page: provisional lines while the task runs (no
speakers, marked provisional, playable), following the newest line unless the person scrolled
away from it, told to screen readers as a short summary at most every few seconds, caught up
exactly after a reconnect or while polling, and replaced in place by the final transcript.

Elements are found by role and name where a person with a screen reader would find them. What
the page showed over time is recorded by the tests' own observers (LIVE_SEEN, NEWS), not by the
page. The screenshot of provisional text goes to docs/screenshots/ with UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Locator, Page, expect

from transcriber.config import Config
from transcriber.worker import assets

from .browser import collect_errors, launch
from .serverproc import ServerProcess, Switch, running_proxy
from .test_page import StartServer, shot, start_server, wav_file

pytestmark = pytest.mark.browser
__all__ = ["start_server", "wav_file"]  # fixtures, used by name

PLUMBING = [f"Plumbing segment {n}." for n in range(1, 6)]

# Installed before the page's scripts: every distinct [stage of the selected task, provisional
# lines on screen] in order (window.liveSeen), and the provisional lines' texts as last seen.
LIVE_SEEN = """(() => {
  window.liveSeen = [];
  window.liveTexts = [];
  const record = () => {
    const card = document.querySelector('#task-list > li[aria-current="true"]');
    const stage = card?.querySelector(".stage")?.textContent ?? "";
    const list = document.querySelector("ol.live-transcript");
    const shown = list && list.isConnected && list.checkVisibility() ? [...list.children] : [];
    if (shown.length) window.liveTexts = shown.map((li) => li.querySelector(".text").textContent);
    const last = window.liveSeen.at(-1);
    if (!last || last[0] !== stage || last[1] !== shown.length) {
      window.liveSeen.push([stage, shown.length]);
    }
  };
  const options = { subtree: true, childList: true, characterData: true };
  new MutationObserver(record).observe(document, options);
})()"""

# What the page's text region says, with when (ms since the page began).
NEWS = """() => {
  const region = document.getElementById("transcript-news");
  window.news = [];
  new MutationObserver(() => window.news.push([performance.now(), region.textContent])).observe(
    region, { childList: true, subtree: true, characterData: true });
}"""

# Every segment index the page was sent, by which way (ws or poll), and the subscribes it sent.
WIRE = """(() => {
  window.textReceived = [];
  window.subscribes = [];
  const nativeFetch = window.fetch;
  window.fetch = async (...args) => {
    const response = await nativeFetch(...args);
    if (String(args[0]).includes("/segments?")) {
      response.clone().json().then((page) => {
        if (!page.final) for (const s of page.segments) window.textReceived.push(["poll", s.index]);
      }).catch(() => {});
    }
    return response;
  };
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener("message", (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type !== "segments") return;
      for (const s of msg.segments) window.textReceived.push(["ws", s.index]);
    });
    const send = ws.send.bind(ws);
    ws.send = (data) => {
      const msg = JSON.parse(data);
      if (msg.type === "subscribe" && "last_segment" in msg) {
        window.subscribes.push(msg.last_segment);
      }
      send(data);
    };
    return ws;
  };
  Object.assign(window.WebSocket, Native);
  window.WebSocket.prototype = Native.prototype;
})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    pages: list[tuple[Page, list[str]]] = []

    def make(width: int = 1100, height: int = 760) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.add_init_script(LIVE_SEEN)
        page.add_init_script(WIRE)
        page.set_default_timeout(15_000)
        errors: list[str] = []
        collect_errors(page, errors)
        pages.append((page, errors))
        return page

    yield make
    for page, errors in pages:
        page.context.close()
        assert not errors, f"uncaught errors or CSP violations in the page: {errors}"


def upload(page: Page, *files: Path) -> None:
    page.get_by_label("Choose audio files").set_input_files([str(f) for f in files])


def task_card(page: Page, filename: str) -> Locator:
    return page.get_by_role("listitem", name=filename)


def provisional(page: Page) -> Locator:
    return page.get_by_role("list", name="Provisional transcript").get_by_role("listitem")


def final_lines(page: Page) -> Locator:
    return page.get_by_role("list", name="Transcript", exact=True).get_by_role("listitem")


def line_texts(lines: Locator) -> list[str]:
    return [" ".join(text.split()) for text in lines.all_inner_texts()]


def seen(page: Page) -> list[tuple[str, int]]:
    rows: list[list[Any]] = page.evaluate("window.liveSeen")
    return [(stage, count) for stage, count in rows]


def box(locator: Locator) -> dict[str, float]:
    result: dict[str, float] = locator.evaluate(
        "(node) => { const r = node.getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, inner: window.innerHeight, y: window.scrollY} }"
    )
    return result


def scroll_y(page: Page) -> float:
    value: float = page.evaluate("window.scrollY")
    return value


# -- 1. the real model: text before the task completes, the final view as a fresh page's ----------


def meeting(folder: Path, seconds: float) -> Path:
    """Real meeting speech: the AMI excerpts (30 s each) one after another, cut to `seconds`."""
    ami = assets.fetch_ami_excerpts(Config.from_env().models_dir)
    excerpts = sorted(p for p in ami.glob("*.wav") if p.stem != "empty")
    listing = folder / "meeting.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in excerpts))
    out = folder / "meeting.wav"
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe"]
    command += ["0", "-i", str(listing), "-t", str(seconds), "-ar", "16000", "-ac", "1", str(out)]
    subprocess.run(command, check=True)
    return out


@pytest.mark.slow
def test_real_model_text_grows_then_the_final_replaces_it(
    new_page: Callable[..., Page], tmp_path: Path
) -> None:
    recording = meeting(tmp_path, 150)
    server = ServerProcess(tmp_path / "data", "--model", "tiny.en", "--device", "cpu").start()
    try:
        page = new_page()
        page.goto(server.url)
        expect(page.get_by_role("status", name="Connection")).to_have_text("Connected")
        upload(page, recording)
        card = task_card(page, "meeting.wav")
        expect(card.get_by_text("Transcribing", exact=True)).to_be_visible(timeout=120_000)
        expect(provisional(page).first).to_be_visible(timeout=120_000)
        expect(provisional(page).nth(5)).to_be_visible(timeout=120_000)
        page.evaluate("document.getElementById('result').scrollIntoView()")
        shot(page, "live-transcript.png")
        expect(card.get_by_text("Complete", exact=True)).to_be_visible(timeout=600_000)
        expect(final_lines(page).first).to_be_visible()
        expect(provisional(page)).to_have_count(0)
        history = seen(page)
        # Text was on screen while the card said Transcribing, and it grew there.
        counts = [count for stage, count in history if stage == "Transcribing" and count]
        assert len(counts) >= 2 and counts == sorted(counts), history
        # The provisional text is the words of the final one (alignment and speakers come after).
        said: list[str] = page.evaluate("window.liveTexts")
        final = line_texts(final_lines(page).locator(".text"))
        assert " ".join(said).split() == " ".join(final).split()
        shown = line_texts(final_lines(page))
        tid = card.get_attribute("data-id")
        fresh = new_page()
        fresh.goto(f"{server.url}/#task={tid}")
        expect(final_lines(fresh).first).to_be_visible()
        assert line_texts(final_lines(fresh)) == shown
        assert fresh.locator("ol.live-transcript").count() == 0
    finally:
        server.stop()


# -- 2. accessibility while provisional text shows ------------------------------------------------


def test_provisional_text_is_accessible_and_announced_politely(
    new_page: Callable[..., Page], start_server: StartServer, wav_file: Path
) -> None:
    server = start_server(stage_seconds=6)
    page = new_page()
    page.goto(server.url)
    expect(page.get_by_role("status", name="Connection")).to_have_text("Connected")
    page.evaluate(NEWS)
    upload(page, wav_file)
    card = task_card(page, "tone.wav")
    lines = provisional(page)
    expect(lines.nth(1)).to_be_visible(timeout=20_000)
    expect(card.get_by_text("Transcribing", exact=True)).to_be_visible()
    result = page.get_by_role("region", name="tone.wav")
    expect(result.get_by_text("Provisional", exact=True)).to_be_visible()
    # No speakers yet, and no edits: the lines are the text and a time to play from.
    expect(lines.first).to_contain_text("Plumbing segment 1.")
    expect(lines.first.get_by_role("button")).to_have_count(1)
    violations = Axe().run(page).response["violations"]
    assert not violations, [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]

    # The player works from a provisional line.
    lines.nth(1).get_by_role("button", name="Play from 0:02").click()
    expect(lines.nth(1)).to_have_attribute("aria-current", "true")
    assert page.evaluate("document.querySelector('audio').currentTime") == pytest.approx(2, abs=1)
    page.evaluate("document.querySelector('audio').pause()")

    expect(provisional(page)).to_have_count(5, timeout=20_000)
    expect(card.get_by_text("Complete", exact=True)).to_be_visible(timeout=30_000)
    expect(final_lines(page)).to_have_count(5)
    violations = Axe().run(page).response["violations"]
    assert not violations, [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]
    # Screen readers heard a short summary, never a line at a time, at most every 5 s.
    news: list[list[Any]] = page.evaluate("window.news")
    said = [text for _, text in news]
    assert said and all(t.endswith(" in the transcript") for t in said), said
    counts = [int(t.split()[0]) for t in said]
    assert sum(counts) == 5 and len(said) < 5, said
    times = [at for at, _ in news]
    assert all(b - a >= 4_900 for a, b in itertools.pairwise(times)), news


# -- 3. following the newest line, the reading position, a reconnect ------------------------------


def test_follows_only_at_the_newest_line_and_the_final_keeps_the_reading_position(
    new_page: Callable[..., Page], start_server: StartServer, wav_file: Path
) -> None:
    server = start_server(stage_seconds=12)
    page = new_page(height=420)
    page.goto(server.url)
    expect(page.get_by_role("status", name="Connection")).to_have_text("Connected")
    upload(page, wav_file)
    lines = provisional(page)
    expect(lines).to_have_count(1, timeout=20_000)

    # Scrolled away from the newest line: new text does not move the view.
    page.evaluate(
        """() => {
          const line = document.querySelector("ol.live-transcript > li");
          window.scrollBy(0, line.getBoundingClientRect().top - window.innerHeight - 60);
        }"""
    )
    before = scroll_y(page)
    assert box(lines.first)["top"] > box(lines.first)["inner"]
    expect(lines).to_have_count(2)
    assert scroll_y(page) == before
    assert box(lines.nth(1))["top"] > box(lines.nth(1))["inner"]

    # At the newest line, the bottom of the window: it follows the next one out of the window.
    page.evaluate(
        """() => {
          const line = document.querySelectorAll("ol.live-transcript > li")[1];
          window.scrollBy(0, line.getBoundingClientRect().bottom - window.innerHeight + 2);
        }"""
    )
    before = scroll_y(page)
    assert 0 < box(lines.nth(1))["inner"] - box(lines.nth(1))["bottom"] < 5
    expect(lines).to_have_count(3)
    newest = box(lines.nth(2))
    assert newest["y"] > before and newest["bottom"] <= newest["inner"], (before, newest)

    # Every line in; the final transcript replaces the provisional one with the line being read
    # where it was.
    expect(lines).to_have_count(5)
    line = lines.nth(1)
    page.evaluate(
        """() => {
          const line = document.querySelectorAll("ol.live-transcript > li")[1];
          window.scrollBy(0, line.getBoundingClientRect().top - 250);
        }"""
    )
    at = box(line)["top"]
    expect(final_lines(page)).to_have_count(5, timeout=40_000)
    same = final_lines(page).nth(1)
    expect(same).to_contain_text("Speaker 1")
    expect(same).to_contain_text(PLUMBING[1])
    assert box(same)["top"] == pytest.approx(at, abs=2)


@pytest.fixture
def proxy(start_server: StartServer, tmp_path: Path) -> Iterator[tuple[str, Switch]]:
    server = start_server("--heartbeat", "1", stage_seconds=12)
    yield from running_proxy(server.url, tmp_path / "proxy.log")


def test_a_reconnect_and_polling_lose_and_repeat_no_line(
    new_page: Callable[..., Page], proxy: tuple[str, Switch], wav_file: Path
) -> None:
    url, switch = proxy
    page = new_page()
    page.goto(f"{url}/?ws_backoff=0,0.2&ws_retry=1")
    expect(page.get_by_role("status", name="Connection")).to_have_text("Connected")
    upload(page, wav_file)
    lines = provisional(page)
    expect(lines).to_have_count(1, timeout=20_000)

    # The WebSocket goes: the page polls, and the text comes by GET .../segments?after=N.
    switch("403")
    expect(page.get_by_role("status", name="Mode")).to_have_text("Polling", timeout=15_000)
    polled = lines.count()
    expect(lines).to_have_count(polled + 1, timeout=15_000)
    # Back to Live: the subscription asks for what follows the last line held.
    switch("allow")
    expect(page.get_by_role("status", name="Mode")).to_have_text("Live", timeout=15_000)
    expect(lines).to_have_count(5, timeout=30_000)
    assert line_texts(lines.locator(".text")) == PLUMBING
    received: list[list[Any]] = page.evaluate("window.textReceived")
    assert sorted(index for _, index in received) == [0, 1, 2, 3, 4], received
    assert {"ws", "poll"} <= {way for way, _ in received}, received
    subscribes: list[int] = page.evaluate("window.subscribes")
    assert subscribes[0] == -1 and subscribes[-1] >= polled, subscribes
    expect(final_lines(page)).to_have_count(5, timeout=60_000)
    assert line_texts(final_lines(page).locator(".text")) == PLUMBING
