"""Debian's Chromium for the page tests, and what counts as an error in a page."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = os.environ.get("TRANSCRIBER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch() -> Iterator[Browser]:
    """The browser for a module's tests (yield from it in a fixture)."""
    # A missing browser is a failure, never a skip: these tests are the page's only check.
    assert Path(CHROMIUM).exists(), (
        f"Chromium is required for the page tests; {CHROMIUM} is missing"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def collect_errors(page: Page, errors: list[str]) -> None:
    """Uncaught exceptions, and Content-Security-Policy violations: the page runs under the
    server's CSP, so a violation is a failure too."""
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
