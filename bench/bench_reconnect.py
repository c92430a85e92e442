"""Spread of 1,000 pages' reconnects after a server restart (the page's own connection code).

Chromium loads static/connection.js from the server and runs 1,000 Connection objects (4 tabs
of 250: one renderer holds at most about 255 sockets), each with its real WebSocket. The
server is then stopped and started again on the same port, twice in the same run:
  - SIGTERM: the server closes every socket with 1001 (going away), so each page waits a
    random 0-3 s before its first attempt (full jitter);
  - SIGKILL: the sockets just break (1006), the baseline: every page retries at once.
Reported: first-attempt times after the close (p50, p99, max) and the busiest 100 ms.

    .venv/bin/python bench/bench_reconnect.py [--pages 4 --per-page 250]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Server, machine_note, percentile, plumbing_args

CHROMIUM = os.environ.get("TRANSCRIBER_CHROMIUM", "/usr/bin/chromium")
OPEN = """async (count) => {
  const { Connection } = await import("/static/connection.js");
  const api = { wsUrl: (path) => `ws://${location.host}${path}`, get: async () => null };
  const settings = { backoff: [0, 1, 2, 4, 8], jitter: 0.1, backgroundRetry: 30, pollWait: 25 };
  window.conns = [];
  for (let i = 0; i < count; i++) {
    const c = new Connection({
      api, settings, getSeq: () => 0, onSnapshot: () => {}, onChange: () => {}, onGone: () => {},
    });
    c.start();
    window.conns.push(c);
  }
}"""
CONNECTED = "() => window.conns.every((c) => c.state === 'connected')"
# Per connection: when its first socket ended, and when its first reconnect attempt began.
FIRST = """() => window.conns.map((c) => {
  const lost = c.attempts.find((a) => a.n === 1);
  const next = c.attempts.find((a) => a.n === 2);
  return [lost.ended, next ? next.at : null, lost.outcome];
})"""


def restart(server: Server, sig: int) -> None:
    assert server.proc is not None
    os.killpg(server.proc.pid, sig)
    server.proc.wait(30)
    server.start()


def measure(pages: list[Page], server: Server, sig: int) -> dict[str, Any]:
    for page in pages:
        page.reload()
    for page, count in zip(pages, PER_PAGE, strict=True):
        page.evaluate(OPEN, count)
        page.wait_for_function(CONNECTED, timeout=60_000)
    restart(server, sig)
    time.sleep(6)  # every first attempt lies within 3 s of the close; margin for a busy machine
    rows = [row for page in pages for row in page.evaluate(FIRST)]
    closed = min(lost for lost, _, _ in rows)
    waits = sorted(at - closed for _, at, _ in rows if at is not None)
    buckets: dict[int, int] = {}
    for wait in waits:
        buckets[int(wait * 10)] = buckets.get(int(wait * 10), 0) + 1
    return {
        "sockets": len(rows),
        "outcomes": sorted({outcome for _, _, outcome in rows}),
        "p50": percentile(waits, 50),
        "p99": percentile(waits, 99),
        "max": waits[-1],
        "busiest_100ms": max(buckets.values()),
    }


PER_PAGE: list[int] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--per-page", type=int, default=250)
    args = parser.parse_args()
    PER_PAGE.extend([args.per_page] * args.pages)
    with tempfile.TemporaryDirectory(prefix="bench-reconnect-") as tmp, sync_playwright() as pw:
        server = Server(Path(tmp), *plumbing_args(), nofile=8192).start()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            pages = [browser.new_context().new_page() for _ in range(args.pages)]
            for page in pages:
                # A document under the page's CSP (script-src 'self') that runs no app of its own.
                page.goto(server.url + "/static/style.css")
            results = {
                "going away (SIGTERM)": measure(pages, server, signal.SIGTERM),
                "broken (SIGKILL)": measure(pages, server, signal.SIGKILL),
            }
        finally:
            browser.close()
            server.stop()
    print(f"machine: {machine_note()}")
    print(
        f"{'restart':<22} {'sockets':>7} {'p50 s':>7} {'p99 s':>7} {'max s':>7} {'peak/100ms':>11}"
    )
    for name, r in results.items():
        print(
            f"{name:<22} {r['sockets']:>7} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['max']:>7.2f} "
            f"{r['busiest_100ms']:>11}   {', '.join(r['outcomes'])}"
        )
    going, broken = results["going away (SIGTERM)"], results["broken (SIGKILL)"]
    print(
        f"busiest 100 ms, going away / broken: "
        f"{going['busiest_100ms'] / max(1, broken['busiest_100ms']):.2f}"
    )


if __name__ == "__main__":
    main()
