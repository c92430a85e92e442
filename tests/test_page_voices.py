"""Known voices on the page, in Chromium against the real server (plumbing pipeline, whose
diarization gives SPEAKER_00 the same made-up voice in every task): remember a voice, see it
recognised in the next task, undo that, add a sample, rename and delete in the profiles
panel; axe finds nothing to fix."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Dialog, Page, expect

from .browser import collect_errors, launch
from .conftest import tone_wav
from .serverproc import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"TRANSCRIBER_PLUMBING_STAGE_SECONDS": "0.3"}
    proc = ServerProcess(tmp_path / "data", "--pipeline", "plumbing", env=env).start()
    yield proc
    proc.stop()


def api(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


def answer(page: Page, text: str | None = None) -> None:
    def accept(dialog: Dialog) -> None:
        dialog.accept(text) if text is not None else dialog.accept()

    page.once("dialog", accept)


def upload_complete(page: Page, tmp_path: Path, name: str) -> str:
    wav = tmp_path / name
    wav.write_bytes(tone_wav(seconds=10))
    page.get_by_label("Exactly").fill("2")
    page.locator("#files").set_input_files(str(wav))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator(".transcript .line")).to_have_count(5)
    return str(page.evaluate("window.location.hash").split("=")[1])


def test_remember_recognise_undo_rename_delete(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    errors: list[str] = []
    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    collect_errors(page, errors)
    page.goto(server.url)
    expect(page.get_by_text("No voices remembered yet.")).to_be_visible()
    first = upload_complete(page, tmp_path, "monday.wav")
    voices = page.get_by_role("region", name="Voices", exact=True)
    expect(voices.get_by_role("listitem")).to_have_text(
        ["Speaker 1Remember this voice", "Speaker 2Remember this voice"]
    )
    answer(page, "Anna")
    voices.get_by_role("button", name="Remember the voice of Speaker 1").click()
    panel = page.get_by_role("list", name="Known voices")
    expect(panel.get_by_role("listitem")).to_have_count(1)
    expect(panel.get_by_role("listitem").first).to_contain_text("Anna6 s of speech, 1 sample")
    expect(voices.get_by_role("listitem").first).to_contain_text("AnnaRecognised")
    expect(page.locator(".transcript .line .speaker").first).to_have_text("Anna")
    assert api(f"{server.url}/api/tasks/{first}/transcript")["speaker_names"] == {
        "SPEAKER_00": "Anna"
    }

    second = upload_complete(page, tmp_path, "tuesday.wav")
    expect(voices.get_by_role("listitem").first).to_contain_text("AnnaRecognised")
    expect(page.locator(".transcript .line .speaker").first).to_have_text("Anna")
    violations = Axe().run(page).response["violations"]
    assert not violations, [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]
    voices.get_by_role("button", name="Not Anna: undo the recognition").click()
    expect(voices.get_by_role("listitem").first).to_have_text("Speaker 1Remember this voice")
    expect(page.locator(".transcript .line .speaker").first).to_have_text("Speaker 1")
    assert api(f"{server.url}/api/tasks/{second}/transcript")["speaker_names"] == {}

    # The name of a profile adds the speaker to it as a sample.
    answer(page, "anna")
    voices.get_by_role("button", name="Remember the voice of Speaker 1").click()
    expect(panel.get_by_role("listitem").first).to_contain_text("Anna12 s of speech, 2 samples")

    answer(page, "Anna Berg")
    panel.get_by_role("button", name="Rename Anna").click()
    expect(panel.get_by_role("listitem").first).to_contain_text("Anna Berg")
    violations = Axe().run(page).response["violations"]
    assert not violations, [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]
    answer(page)
    panel.get_by_role("button", name="Delete Anna Berg").click()
    expect(page.get_by_text("No voices remembered yet.")).to_be_visible()
    assert api(f"{server.url}/api/profiles") == {"profiles": [], "enabled": True}
    assert not errors, errors


@pytest.mark.slow
def test_real_pipeline_recognises_the_same_people_in_the_next_meeting(
    browser: Browser, tmp_path: Path
) -> None:
    """The real models (tiny.en, the bundled diarizer): two AMI excerpts of the same two
    people. Both voices remembered from the first on the page are recognised in the second,
    each as the right person (the reference RTTM says who is who)."""
    from transcriber.config import Config
    from transcriber.worker import assets

    from .test_profiles_real import owners, reference

    ami = assets.fetch_ami_excerpts(Config.from_env().models_dir)
    server = ServerProcess(tmp_path / "data", "--model", "tiny.en", "--device", "cpu").start()
    errors: list[str] = []
    try:
        page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
        page.set_default_timeout(30_000)
        collect_errors(page, errors)
        page.goto(server.url)
        first = upload_real(page, ami / "dev00.wav")
        voices = page.get_by_role("region", name="Voices", exact=True)
        names = {"Speaker 1": "Alex", "Speaker 2": "Sam"}
        for shown, name in names.items():
            answer(page, name)
            voices.get_by_role("button", name=f"Remember the voice of {shown}").click()
            expect(voices.get_by_role("listitem").filter(has_text=name)).to_contain_text(
                "Recognised"
            )
        second = upload_real(page, ami / "dev01.wav")
        for name in names.values():
            expect(voices.get_by_role("listitem").filter(has_text=name)).to_contain_text(
                "Recognised"
            )
        truth = {}
        for task_id, uri in ((first, "dev00"), (second, "dev01")):
            with urllib.request.urlopen(f"{server.url}/api/tasks/{task_id}/diarization.rttm") as r:
                truth[uri] = owners(r.read().decode(), reference(ami, uri))
        assert truth["dev00"] == truth["dev01"] and set(truth["dev01"]) == {"Alex", "Sam"}
        violations = Axe().run(page).response["violations"]
        assert not violations, [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]
    finally:
        server.stop()
    assert not errors, errors


def upload_real(page: Page, wav: Path) -> str:
    page.locator("#files").set_input_files(str(wav))
    expect(page.get_by_role("heading", name=wav.name)).to_be_visible()
    # The real models take a while on a busy CPU.
    expect(page.get_by_role("region", name="Voices", exact=True)).to_be_visible(timeout=600_000)
    return str(page.evaluate("window.location.hash").split("=")[1])
