"""Keys per person on the page, in a real Chromium against the real server process: the key
signs in like the token, each card shows its owner, an admin filters mine / everyone, a
person under --visibility own sees only their own, and a revoked key signs its browser out.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from transcriber.jobs.access import KEYS_TTL

from .browser import collect_errors, launch
from .conftest import tone_wav
from .test_keys import add_key, run_keys
from .test_page import StartServer, start_server, task_card

pytestmark = pytest.mark.browser
__all__ = ["start_server"]  # a fixture, used by name


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


def new_page(browser: Browser, errors: list[str]) -> Page:
    page = browser.new_context(viewport={"width": 1100, "height": 760}).new_page()
    page.set_default_timeout(15_000)
    collect_errors(page, errors)
    return page


def upload_as(url: str, key: str, filename: str) -> str:
    """A task made by a program with this key: a raw upload of a short tone."""
    request = urllib.request.Request(
        f"{url}/api/tasks?filename={filename}&diarize=false",
        data=tone_wav(1.0),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "audio/wav"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        snap = json.load(response)
    assert snap["owner"] != "" and snap["filename"] == filename
    return str(snap["id"])


def refused_within(url: str, key: str, seconds: float) -> None:
    """Wait until the server refuses the key (it reads the keys again every KEYS_TTL)."""
    deadline = time.monotonic() + seconds
    while True:
        request = urllib.request.Request(
            f"{url}/api/tasks", headers={"Authorization": f"Bearer {key}"}
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
            return
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.2)


def sign_in(page: Page, url: str, key: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Access token").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="New transcription")).to_be_visible()


def test_owners_the_admin_filter_and_a_revoked_key(
    browser: Browser, start_server: StartServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    alice = add_key(data, "alice")
    carol = add_key(data, "carol", "--admin")
    server = start_server("--token", "page-admin-token", "--visibility", "own", stage_seconds=0.1)
    upload_as(server.url, alice, "alice.wav")
    upload_as(server.url, carol, "carol.wav")
    errors: list[str] = []

    admin = new_page(browser, errors)
    sign_in(admin, server.url, carol)
    expect(admin.get_by_text("Signed in as carol")).to_be_visible()
    expect(task_card(admin, "alice.wav")).to_contain_text("by alice")
    expect(task_card(admin, "carol.wav")).to_contain_text("by carol")
    mine, everyone = (admin.get_by_role("radio", name=n) for n in ("Mine", "Everyone"))
    expect(everyone).to_be_checked()
    mine.check()
    expect(task_card(admin, "alice.wav")).to_have_count(0)
    expect(task_card(admin, "carol.wav")).to_be_visible()
    everyone.check()
    expect(task_card(admin, "alice.wav")).to_contain_text("by alice")
    expect(admin.locator("#task-list > li")).to_have_count(2)

    person = new_page(browser, errors)
    sign_in(person, server.url, alice)
    expect(person.get_by_text("Signed in as alice")).to_be_visible()
    expect(task_card(person, "alice.wav")).to_contain_text("by alice")
    expect(task_card(person, "alice.wav")).to_contain_text("Complete")
    expect(person.locator("#task-list > li")).to_have_count(1)  # --visibility own
    expect(person.get_by_role("radio", name="Mine")).to_be_hidden()  # not an admin

    assert run_keys(data, "revoke", "alice")[0] == 0
    refused_within(server.url, alice, seconds=KEYS_TTL + 3)
    # The browser holding the revoked key is signed out: its cookie counts for nothing.
    person.reload()
    expect(person.get_by_role("heading", name="Sign in")).to_be_visible()
    person.get_by_label("Access token").fill(alice)
    person.get_by_role("button", name="Sign in").click()
    expect(person.get_by_role("alert")).to_contain_text("That token is not right.")
    admin.reload()
    expect(task_card(admin, "alice.wav")).to_contain_text("by alice")  # her tasks stay
    assert not errors, f"uncaught errors or CSP violations in the page: {errors}"
