"""Memory through the full pipeline for long files: peak RSS of the server and of the worker,
per stage, for 10, 30 and 60 minutes of speech (tiny.en, CPU by default), and the longest
wait between two progress updates in each stage.

The server runs as its own process with one worker; RSS of the server and of its worker
process(es) is sampled every 0.2 s and attributed to the stage the task's snapshot shows.
Between the shortest and the longest file, each stage's growth per minute of audio is divided
by the decoded audio's size (16 kHz float32: 3.84 MB a minute): the copies of it the stage holds.

    .venv/bin/python bench/bench_longfile.py [--minutes 10 30 60] [--model tiny.en]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import make_long_file
from common import Server, descendants, machine_note, mib, rss

BYTES_PER_MINUTE = 16000 * 4 * 60


class StagePeaks:
    """Peak RSS of the server and of its workers, per stage of the watched task."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.stage = "idle"
        self.server: dict[str, int] = {}
        self.worker: dict[str, int] = {}
        self.gap: dict[str, float] = {}
        self.gap_after: dict[str, str] = {}  # the detail shown while the longest gap lasted
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                here = rss(self.pid)
                kids = max((rss(p) for p in descendants(self.pid)), default=0)
            except (OSError, KeyError):
                continue
            self.server[self.stage] = max(self.server.get(self.stage, 0), here)
            self.worker[self.stage] = max(self.worker.get(self.stage, 0), kids)

    def __enter__(self) -> StagePeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def run_one(server: Server, audio: Path, peaks: StagePeaks) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.url}/api/tasks?filename=long.wav",
        data=audio.read_bytes(),
        headers={"Content-Type": "audio/wav"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as resp:
        task_id = json.load(resp)["id"]
    since = 0
    last = time.monotonic()
    shown = ""
    while True:
        url = f"{server.url}/api/tasks/{task_id}?wait=20&since={since}"
        with urllib.request.urlopen(url, timeout=60) as resp:
            snap: dict[str, Any] = json.load(resp)
        now = time.monotonic()
        if snap["stage"] == peaks.stage and now - last > peaks.gap.get(snap["stage"], 0.0):
            # Longest wait for a new snapshot within a stage: what a person watching sees.
            peaks.gap[snap["stage"]] = now - last
            peaks.gap_after[snap["stage"]] = shown
        last, shown = now, snap["detail"]
        peaks.stage = snap["stage"]
        since = snap["seq"]
        if snap["stage"] in ("complete", "failed", "cancelled"):
            return snap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 60])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"machine: {machine_note()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp_name:
        tmp = Path(tmp_name)
        for minutes in args.minutes:
            audio = make_long_file(tmp, minutes)
            # A fresh server each time: every worker starts from the same idle state.
            server = Server(
                tmp,
                "--model",
                args.model,
                "--device",
                args.device,
                "--max-audio-seconds",
                str(4 * 3600),
                name=f"long{minutes:g}",
            ).start()
            try:
                begin = time.monotonic()
                with StagePeaks(server.pid) as peaks:
                    snap = run_one(server, audio, peaks)
                wall = time.monotonic() - begin
            finally:
                server.stop()
            rows.append((minutes, peaks))
            report(minutes, snap, peaks, wall)
    growth(rows)


STAGES = ("transcribing", "aligning", "diarizing")


def report(minutes: float, snap: dict[str, Any], peaks: StagePeaks, wall: float) -> None:
    audio = mib(minutes * BYTES_PER_MINUTE)
    print(f"\n{minutes:g} min: {snap['stage']} in {wall:.0f} s; decoded audio {audio}")
    print(f"  {'stage':<14}{'server peak':>12}{'worker peak':>13}{'longest gap':>13}")
    for stage in STAGES:
        if stage in peaks.worker:
            gap = f"{peaks.gap.get(stage, 0.0):.1f} s"
            row = f"{mib(peaks.server[stage]):>12}{mib(peaks.worker[stage]):>13}{gap:>13}"
            row += f"  (showing {peaks.gap_after.get(stage, '')!r})"
            print(f"  {stage:<14}{row}")


def growth(rows: list[tuple[float, StagePeaks]]) -> None:
    """Per stage, what each extra minute of audio adds to the worker's peak, in copies of the
    decoded audio: a stage holding one copy grows by about 1.0."""
    if len(rows) < 2:
        return
    (m0, p0), (m1, p1) = rows[0], rows[-1]
    hours = (m1 - m0) / 60
    print(f"\ngrowth from {m0:g} to {m1:g} min of audio, per hour of audio:")
    for stage in STAGES:
        if stage in p0.worker and stage in p1.worker:
            slope = (p1.worker[stage] - p0.worker[stage]) / hours
            copies = slope / (60 * BYTES_PER_MINUTE)
            print(f"  {stage:<14} worker {mib(slope):>11}/h  = {copies:.2f} copies of the audio")
    server = (max(p1.server.values()) - max(p0.server.values())) / hours
    top = max(p1.worker, key=lambda s: p1.worker[s])
    print(f"  server {mib(server)}/h; the worker's peak at {m1:g} min is in {top}")


if __name__ == "__main__":
    main()
