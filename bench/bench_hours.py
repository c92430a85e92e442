"""Hours of real meeting speech through the whole pipeline: wall time, peak RSS of the server
and of its worker per stage, the longest progress gap, and whether speaker labels hold from
the first hour to the last.

The audio is the AMI meeting excerpts that set-up fetches (pyannote.audio's test files, real
people, 30 s files with reference RTTMs), laid end to end and repeated to the length
asked for. Each repetition holds the same voices at known times, so a speaker's label can be
compared across hours: for each repetition and each reference speaker, the label the server
gave most of that speaker's speech; "consistent" is the share of reference speech whose label
is the one that speaker got in the first repetition.

    .venv/bin/python bench/bench_hours.py [--hours 4] [--model tiny.en] [--root CHECKOUT]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

from bench_longfile import StagePeaks, report, run_one
from common import ROOT, Server, machine_note

AMI = Path.home() / ".cache" / "transcriber" / "ami-debug"
# Two meetings' excerpts: tst00/tst01 hold the same four people, dev00/dev01 the same two;
# six voices in all, what a long meeting or a day of a lab's interviews holds. (All fourteen
# excerpts bring 27 voices, more than the diarizer's default ceiling of ten.)
FILES = ["tst00", "tst01", "dev00", "dev01"]
EXCERPT = 30.0  # seconds in each excerpt (32-bit float WAV)

Turn = tuple[float, float, str]


def reference_turns() -> list[Turn]:
    """One repetition's reference turns, on the time line of the laid-out excerpts."""
    turns: list[Turn] = []
    for rttm in AMI.glob("debug.*.rttm"):
        for line in rttm.read_text().splitlines():
            field = line.split()
            if field[1] in FILES:
                start = FILES.index(field[1]) * EXCERPT + float(field[3])
                turns.append((start, start + float(field[4]), field[7]))
    return turns


def make_audio(folder: Path, hours: float) -> Path:
    listing = folder / "files.txt"
    listing.write_text("".join(f"file '{AMI / name}.wav'\n" for name in FILES))
    one = folder / "one.wav"
    ffmpeg = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run(
        [*ffmpeg, "-f", "concat", "-safe", "0", "-i", str(listing), "-ar", "16000", str(one)],
        check=True,
    )
    out = folder / "hours.wav"
    subprocess.run(
        [*ffmpeg, "-stream_loop", "-1", "-i", str(one), "-t", str(hours * 3600), str(out)],
        check=True,
    )
    return out


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def consistency(hyp: list[Turn], hours: float) -> list[tuple[int, float, float]]:
    """Per hour: (hour, share of reference speech labelled as in the first repetition,
    reference seconds)."""
    ref = reference_turns()
    period = EXCERPT * len(FILES)
    reps = int(hours * 3600 // period)
    by_rep: dict[int, list[Turn]] = defaultdict(list)
    for turn in hyp:
        by_rep[int(turn[0] // period)].append(turn)
    label: dict[tuple[int, str], str] = {}
    for rep in range(reps):
        votes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for start, end, who in ref:
            span = (start + rep * period, end + rep * period)
            for turn in by_rep[rep] + by_rep.get(rep + 1, []):
                votes[who][turn[2]] += overlap(span, turn[:2])
        for who, counts in votes.items():
            if counts:
                label[(rep, who)] = max(counts, key=lambda k: counts[k])
    rows = []
    for hour in range(math.ceil(hours)):
        same = total = 0.0
        for rep in range(reps):
            if not hour * 3600 <= rep * period < (hour + 1) * 3600:
                continue
            for start, end, who in ref:
                seconds = end - start
                total += seconds
                if (rep, who) in label and label.get((rep, who)) == label.get((0, who)):
                    same += seconds
        rows.append((hour + 1, same / total if total else 0.0, total))
    return rows


def rttm_turns(url: str) -> list[Turn]:
    with urllib.request.urlopen(url, timeout=60) as resp:
        text = resp.read().decode()
    turns = []
    for line in text.splitlines():
        field = line.split()
        start = float(field[3])
        turns.append((start, start + float(field[4]), field[7]))
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to run the server of")
    args = parser.parse_args()
    print(f"machine: {machine_note()}")
    with tempfile.TemporaryDirectory(prefix="bench-hours-") as tmp_name:
        tmp = Path(tmp_name)
        audio = make_audio(tmp, args.hours)
        limit = str(args.hours * 3600 + 600)
        server = Server(
            tmp,
            "--model",
            args.model,
            "--device",
            "cpu",
            "--max-audio-seconds",
            limit,
            name="hours",
            root=args.root,
        ).start()
        try:
            begin = time.monotonic()
            with StagePeaks(server.pid) as peaks:
                snap = run_one(server, audio, peaks)
            wall = time.monotonic() - begin
            report(args.hours * 60, snap, peaks, wall)
            if snap["stage"] == "complete":
                url = f"{server.url}/api/tasks/{snap['id']}/transcript?format=json"
                with urllib.request.urlopen(url, timeout=120) as resp:
                    transcript = json.load(resp)
                print(f"  timings: {json.dumps(transcript['timings'])}")
                print(f"  segments: {len(transcript['segments'])}")
                hyp = rttm_turns(f"{server.url}/api/tasks/{snap['id']}/diarization.rttm")
                print(f"  speakers found: {len({t[2] for t in hyp})}")
                for hour, share, total in consistency(hyp, args.hours):
                    print(
                        f"  hour {hour}: {share:.1%} of {total:.0f} s of reference speech"
                        " labelled as in the first repetition"
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
