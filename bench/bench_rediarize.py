"""Re-running diarization alone vs the full pipeline on the same 5-minute file, in one run.

Starts the real server (real models), warms its worker with the 40 s fixture (every model
loaded), then times, from the POST to Complete over long-polling: the full pipeline on a
5-minute file, and POST /api/tasks/{id}/rediarize on that task. Aim: rediarize <= 0.45x.

    .venv/bin/python bench/bench_rediarize.py [--model base] [--device cpu] [--minutes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_pipeline import ROOT, free_port, make_long_file, request, start_server


def wait_complete(url: str, snap: dict[str, Any]) -> dict[str, Any]:
    stages = [snap["stage"]]
    while snap["stage"] not in ("complete", "failed", "cancelled"):
        snap = request(f"{url}/api/tasks/{snap['id']}?wait=30&since={snap['seq']}")
        if stages[-1] != snap["stage"]:
            stages.append(snap["stage"])
    assert snap["stage"] == "complete", snap
    snap["seen"] = stages
    return snap


def full_run(url: str, audio: Path) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    snap = request(
        f"{url}/api/tasks?filename={audio.name}",
        audio.read_bytes(),
        "POST",
        {"Content-Type": "audio/wav"},
    )
    final = wait_complete(url, snap)
    return time.perf_counter() - start, final


def rediarize_run(url: str, task_id: str, speakers: int) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    body = json.dumps({"num_speakers": speakers}).encode()
    snap = request(
        f"{url}/api/tasks/{task_id}/rediarize", body, "POST", {"Content-Type": "application/json"}
    )
    final = wait_complete(url, snap)
    return time.perf_counter() - start, final


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-rediarize-"))
    try:
        audio = make_long_file(tmp, args.minutes)
        port = free_port()
        proc = start_server(tmp / "data", port, args.model, args.device)
        url = f"http://127.0.0.1:{port}"
        try:
            full_run(url, ROOT / "tests" / "data" / "voices.wav")  # loads every model
            full, task = full_run(url, audio)
            transcript = request(f"{url}/api/tasks/{task['id']}/transcript")
            again, redone = rediarize_run(url, task["id"], 3)
            after = request(f"{url}/api/tasks/{task['id']}/transcript")
        finally:
            proc.terminate()
            proc.wait(30)
        print(f"load average {os.getloadavg()[0]:.2f}; model {args.model}, {args.device}")
        print(f"full pipeline, {args.minutes:g} min file: {full:.1f} s; stages {task['seen']}")
        print(f"  speakers {transcript['speakers']}, timings {transcript['timings']}")
        print(f"rediarize (num_speakers=3): {again:.1f} s; stages {redone['seen']}")
        print(f"  speakers {after['speakers']}, revision {after['revision']} ({after['source']})")
        print(f"ratio rediarize / full: {again / full:.3f} (aim <= 0.45)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
