"""Diarization on real speech: DER, speakers found and real-time factor per method and file.

The AMI excerpts come from pyannote.audio's sdist (fetched once, pinned sha256, see
transcriber.worker.assets.fetch_ami_excerpts), plus pyannote's sample and tests/data/voices.wav.
Methods: pyannote's pipeline with its agglomerative settings ("bundled-pyannote", the default
before round 2), and the bundled window diarizer (windows + spectral clustering + segmentation
tracks) with each segmentation step. Prints Markdown tables.

    .venv/bin/python bench/bench_diarize.py [--device cpu] [--minutes 5]
    .venv/bin/python bench/bench_diarize.py --breakdown    # where "bundled"'s error comes from
    .venv/bin/python bench/bench_diarize.py --breakdown --bias=-1,0.5

--breakdown splits each file's DER into missed speech, false alarm and confusion, gives the
floor that the speaker count per frame sets (every frame's speakers right up to the number the
diarizer marks there), and each true speaker's speech and the part of it nobody overlaps.
--bias SILENCE,OVERLAP adds those log-probabilities to segmentation-3.0's powerset classes of no
speaker and of two speakers before it picks one class per frame: below 0 for silence finds more
speech, above 0 for overlap more overlap (round 4 in docs/benchmarks.md).

    .venv/bin/python bench/bench_diarize.py --loop tst00,tst01,dev00,dev01 --loop-minutes 4,30
    .venv/bin/python bench/bench_diarize.py --loop dev00,dev01,trn07,trn08 --jitter

--loop lays the named AMI excerpts end to end and repeats them to each length of --loop-minutes
(a long meeting of the same people), diarizes that with "bundled" (the rule) and scores it
against the excerpts' RTTMs moved to each copy: the whole file (one mapping of labels for all
the copies) and each copy alone; the two are close when the labels stay the same from copy to
copy. --jitter puts 0.1-0.9 s of silence (seeded) before every excerpt, so that no two copies
give the same windows ("Long recordings of the same people" in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyannote.core import Annotation, Segment  # noqa: E402
from pyannote.metrics.diarization import DiarizationErrorRate  # noqa: E402

from transcriber.config import Config  # noqa: E402
from transcriber.worker import assets  # noqa: E402
from transcriber.worker.pipeline import windows  # noqa: E402
from transcriber.worker.pipeline.audio import load_audio  # noqa: E402
from transcriber.worker.pipeline.diarize import BUNDLED, load_diarizer  # noqa: E402

Run = Callable[[np.ndarray, dict[str, Any]], Annotation]
ORDER = ["dev00", "dev01", "tst00", "tst01"] + [f"trn{i:02d}" for i in range(10)]


def load_rttm(path: Path) -> dict[str, Annotation]:
    out: dict[str, Annotation] = {}
    for row in (line.split() for line in path.read_text().splitlines() if line.strip()):
        start, length = float(row[3]), float(row[4])
        out.setdefault(row[1], Annotation(uri=row[1]))[Segment(start, start + length)] = row[7]
    return out


def references(ami: Path) -> dict[str, tuple[Path, Annotation]]:
    import pyannote.audio

    refs: dict[str, Annotation] = {}
    for part in ("train", "development", "test"):
        refs.update(load_rttm(ami / f"debug.{part}.rttm"))
    files = {uri: (ami / f"{uri}.wav", refs[uri]) for uri in ORDER}
    sample = Path(pyannote.audio.__file__).parent / "sample"
    files["sample"] = (sample / "sample.wav", load_rttm(sample / "sample.rttm")["sample"])
    voices = Annotation(uri="voices")
    for t in json.loads((ROOT / "tests/data/voices.json").read_text()):
        voices[Segment(t["start"], t["end"])] = t["speaker"]
    files["voices"] = (ROOT / "tests/data/voices.wav", voices)
    return files


def methods(diarizer: Any) -> dict[str, Run]:
    def waveform(audio: np.ndarray) -> dict[str, Any]:
        return {"waveform": torch.from_numpy(audio)[None], "sample_rate": 16000, "uri": "a"}

    def today(audio: np.ndarray, bounds: dict[str, Any]) -> Annotation:
        seg = diarizer.segmenter
        seg._segmentation.step = 0.5 * seg._segmentation.duration
        out: Annotation = seg(waveform(audio), **bounds).speaker_diarization
        return out

    def windowed(step: float | None) -> Run:
        def run(audio: np.ndarray, bounds: dict[str, Any]) -> Annotation:
            rule = windows.segmentation_step
            if step is not None:
                windows.segmentation_step = lambda device, seconds: step
            try:
                out: Annotation = diarizer(waveform(audio), **bounds)
            finally:
                windows.segmentation_step = rule
            return out

        return run

    return {
        "bundled-pyannote": today,
        "bundled, step 0.5": windowed(windows.COARSE_STEP),
        "bundled, rule (step 0.1 up to 2 min on CPU)": windowed(None),
    }


def score(ref: Annotation, hyp: Annotation, seconds: float, collar: float) -> float:
    metric = DiarizationErrorRate(collar=collar)
    return float(metric(ref, hyp, uem=Segment(0, seconds)))


def timed(run: Run, audio: np.ndarray, bounds: dict[str, Any]) -> tuple[Annotation, float]:
    start = time.perf_counter()
    with torch.inference_mode():
        hyp = run(audio, bounds)
    return hyp, (time.perf_counter() - start) / (len(audio) / 16000)


def table(files: dict[str, tuple[Path, Annotation]], runs: dict[str, Run], oracle: bool) -> None:
    print("| method | file | DER c0 | DER c0.25 | speakers found/true | RTF |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, run in runs.items():
        rows = []
        for uri, (wav, ref) in files.items():
            audio = load_audio(wav)
            seconds = len(audio) / 16000
            bounds = {"num_speakers": len(ref.labels())} if oracle else {}
            hyp, rtf = timed(run, audio, bounds)
            d0, d25 = score(ref, hyp, seconds, 0.0), score(ref, hyp, seconds, 0.25)
            rows.append((uri, d0, len(hyp.labels()), len(ref.labels())))
            found = f"{len(hyp.labels())}/{len(ref.labels())}"
            print(f"| {name} | {uri} | {d0:.1%} | {d25:.1%} | {found} | {rtf:.3f} |", flush=True)
        summary(name, rows)


def summary(name: str, rows: list[tuple[str, float, int, int]]) -> None:
    for group, prefixes in (("dev+test", ("dev", "tst")), ("train", ("trn",))):
        chosen = [r for r in rows if r[0].startswith(prefixes)]
        mean = statistics.mean(r[1] for r in chosen)
        right = sum(r[2] == r[3] for r in chosen)
        counts = f"{right} of {len(chosen)} right"
        print(f"| {name} | **mean {group}** | **{mean:.1%}** | | {counts} | |")


class BiasedPowerset(torch.nn.Module):
    """segmentation-3.0's powerset-to-speakers conversion with biased class log-probabilities."""

    def __init__(self, base: Any, silence: float, overlap: float) -> None:
        super().__init__()
        self.base = base
        sizes = base.mapping.sum(dim=1)  # speakers in each powerset class
        bias = torch.where(sizes == 0, silence, torch.where(sizes >= 2, overlap, 0.0))
        self.bias = bias.float()

    def forward(self, powerset: torch.Tensor) -> torch.Tensor:
        converted: torch.Tensor = self.base(powerset + self.bias.to(powerset.device))
        return converted


GRID = 0.01  # seconds; the frame grid of the breakdown


def _talkers(annotation: Annotation, times: np.ndarray) -> dict[str, np.ndarray]:
    """For each label, whether it speaks at each time."""
    out = {label: np.zeros(len(times), dtype=bool) for label in annotation.labels()}
    for segment, _, label in annotation.itertracks(yield_label=True):
        out[label] |= (times >= segment.start) & (times < segment.end)
    return out


def breakdown(files: dict[str, tuple[Path, Annotation]], run: Run) -> None:
    """Per file: DER's parts, the floor set by the per-frame count, and clean speech per speaker."""
    print(
        "| file | DER c0 | missed | false alarm | confusion | count floor | speakers: "
        "speech / alone (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    floors: dict[str, float] = {}
    for uri, (wav, ref) in files.items():
        audio = load_audio(wav)
        seconds = len(audio) / 16000
        hyp, _ = timed(run, audio, {})
        parts = DiarizationErrorRate(collar=0.0)(ref, hyp, uem=Segment(0, seconds), detailed=True)
        total = parts["total"]
        times = np.arange(0.0, seconds, GRID) + GRID / 2
        truth = _talkers(ref, times)
        said = np.sum([t.astype(int) for t in truth.values()], axis=0)
        marked = np.zeros(len(times), dtype=int)
        for t in _talkers(hyp, times).values():
            marked += t
        floors[uri] = float(np.abs(said - marked).sum() / max(said.sum(), 1))
        speakers = " ".join(
            f"{(t.sum() * GRID):.1f} / {((t & (said == 1)).sum() * GRID):.1f}"
            for t in sorted(truth.values(), key=lambda t: -int(t.sum()))
        )
        shares = " | ".join(
            f"{parts[k] / total:.1%}" for k in ("missed detection", "false alarm", "confusion")
        )
        der = parts["diarization error rate"]
        print(f"| {uri} | {der:.1%} | {shares} | {floors[uri]:.1%} | {speakers} |", flush=True)
    chosen = [floors[u] for u in files if u.startswith(("dev", "tst"))]
    print(f"\ncount floor, mean of dev + test: {statistics.mean(chosen):.1%}")


def long_file(runs: dict[str, Run], minutes: float) -> None:
    voices = load_audio(ROOT / "tests/data/voices.wav")
    audio = np.tile(voices, int(np.ceil(minutes * 60 * 16000 / len(voices))))
    audio = audio[: int(minutes * 60 * 16000)]
    print(f"\n{minutes:g}-minute file (voices.wav looped): diarization RTF")
    for name, run in runs.items():
        hyp, rtf = timed(run, audio, {})
        print(f"| {name} | {rtf:.3f} | {len(hyp.labels())} speakers |", flush=True)


def looped(
    files: dict[str, tuple[Path, Annotation]], names: list[str], seconds: float, jitter: bool
) -> tuple[np.ndarray, Annotation, list[float]]:
    """The excerpts end to end, repeated to `seconds`; their turns moved along; copy starts."""
    rng = np.random.default_rng(0)
    pieces: list[np.ndarray] = []
    ref, at, starts, total = Annotation(uri="a"), 0.0, [], int(seconds * 16000)
    while at * 16000 < total:
        starts.append(at)
        for name in names:
            wav, turns = files[name]
            audio = load_audio(wav)
            if jitter:
                gap = np.zeros(int(rng.uniform(0.1, 0.9) * 16000), dtype=audio.dtype)
                pieces.append(gap)
                at += len(gap) / 16000
            for segment, _, label in turns.itertracks(yield_label=True):
                if at + segment.start < seconds:
                    ref[Segment(at + segment.start, min(at + segment.end, seconds))] = label
            pieces.append(audio)
            at += len(audio) / 16000
    return np.concatenate(pieces)[:total], ref, starts


def loop_table(
    files: dict[str, tuple[Path, Annotation]],
    run: Run,
    names: list[str],
    minutes: list[float],
    jitter: bool,
) -> None:
    """Speakers found and DER on the excerpts looped to each length (see --loop)."""
    voices = {label for n in names for label in files[n][1].labels()}
    print(f"{'+'.join(names)} looped{' with jitter' if jitter else ''}: {len(voices)} voices\n")
    print(
        "| minutes | speakers found/true | DER c0, whole | DER c0 per copy: mean (min-max) | RTF |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    for length in minutes:
        seconds = length * 60
        audio, ref, starts = looped(files, names, seconds, jitter)
        hyp, rtf = timed(run, audio, {})
        whole = score(ref, hyp, seconds, 0.0)
        ends = [*starts[1:], seconds]
        copies = [
            float(DiarizationErrorRate(collar=0.0)(ref, hyp, uem=Segment(a, b)))
            for a, b in zip(starts, ends, strict=True)
            if b - a > 10  # a last copy cut to a few seconds says little
        ]
        each = f"{statistics.mean(copies):.1%} ({min(copies):.1%}-{max(copies):.1%})"
        found = f"{len(hyp.labels())}/{len(ref.labels())}"
        print(f"| {length:g} | {found} | {whole:.1%} | {each} | {rtf:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--oracle-count", action="store_true", help="give the true count")
    parser.add_argument("--breakdown", action="store_true", help="where the error comes from")
    parser.add_argument("--bias", help="SILENCE,OVERLAP log-probability biases (see above)")
    parser.add_argument("--loop", help="AMI excerpts to lay end to end and repeat (see above)")
    parser.add_argument("--loop-minutes", default="4,8,15,30", help="lengths for --loop")
    parser.add_argument("--jitter", action="store_true", help="with --loop: silences between")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    models = Config.from_env().models_dir
    assets.fetch_diarization_models(models)
    files = references(assets.fetch_ami_excerpts(models))
    diarizer = load_diarizer(BUNDLED, models, args.device)
    if args.bias:
        silence, overlap = (float(x) for x in args.bias.split(","))
        inference = diarizer.segmenter._segmentation
        inference.conversion = BiasedPowerset(inference.conversion, silence, overlap)
        print(f"segmentation biases: silence {silence:+g}, overlap {overlap:+g}")
    runs = methods(diarizer)
    print(f"load average {os.getloadavg()[0]:.1f}, device {args.device}\n")
    if args.loop:
        rule = runs["bundled, rule (step 0.1 up to 2 min on CPU)"]
        lengths = [float(m) for m in args.loop_minutes.split(",")]
        loop_table(files, rule, args.loop.split(","), lengths, args.jitter)
        return
    if args.breakdown:
        breakdown(files, runs["bundled, rule (step 0.1 up to 2 min on CPU)"])
        return
    table(files, runs, args.oracle_count)
    if args.minutes > 0:
        long_file(runs, args.minutes)


if __name__ == "__main__":
    main()
