"""CPU threads on a busy machine: one worker's stages with other programs on the same cores.

Each measurement is a fresh process that loads the models, warms them on 10 s, then times one
stage on real meeting speech (the AMI excerpts, joined): wall seconds and CPU seconds. It runs
on a quiet machine and again beside `--hogs` busy loops (other programs using cores), under
each thread setting. Ratios are against the default setting on the quiet machine of the same
run. Prints a Markdown table.

    .venv/bin/python bench/bench_threads.py [--seconds 120] [--hogs 1] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# name: environment for the worker process (unset variables keep the libraries' defaults).
# "adaptive" is what the worker does since threads.py: its progress reports drive a
# ThreadGovernor. The first setting is the baseline of the ratios.
SETTINGS: dict[str, dict[str, str]] = {
    "cores, fixed": {},
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "cores, OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "cores, adaptive (the worker now)": {"BENCH_ADAPTIVE": "1"},
}


def child(stage: str, seconds: float) -> None:
    """Time one stage in this process; print {"wall", "cpu"} as JSON."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from transcriber.config import Config
    from transcriber.worker import assets
    from transcriber.worker.pipeline.audio import load_audio

    models = Config.from_env().models_dir
    ami = assets.fetch_ami_excerpts(models)
    clips = [load_audio(p) for p in sorted(ami.glob("*.wav")) if p.stem != "empty"]
    audio = np.concatenate(clips)[: int(seconds * 16000)]
    warm = audio[: 10 * 16000]
    governor = None
    if os.environ.get("BENCH_ADAPTIVE"):
        from transcriber.worker.threads import ThreadGovernor

        governor = ThreadGovernor(len(os.sched_getaffinity(0)))
    if stage == "diarizing":
        from transcriber.worker.pipeline.diarize import BUNDLED, diarize, load_diarizer

        pipeline = load_diarizer(BUNDLED, models, "cpu")

        def progress(pct: float, detail: str = "") -> None:
            if governor is not None:
                governor.update()

        def run(samples: np.ndarray) -> None:
            diarize(pipeline, samples, {}, progress)

    else:
        from faster_whisper import WhisperModel

        from transcriber.worker.pipeline.models import _cpu_threads

        model = WhisperModel(str(models / "whisper-base"), cpu_threads=_cpu_threads())

        def run(samples: np.ndarray) -> None:
            segments, _ = model.transcribe(samples, language="en", temperature=0.0)
            list(segments)

    run(warm)
    start, cpu = time.perf_counter(), time.process_time()
    run(audio)
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"wall": wall, "cpu": used, "threads_at_end": torch.get_num_threads()}))


def measure(stage: str, seconds: float, env: dict[str, str]) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", stage, "--seconds", str(seconds)]
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def hogs(count: int) -> list[subprocess.Popen[bytes]]:
    loop = "while True: pass"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--hogs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--stages", default="diarizing,transcribing")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds)
        return
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores, load average {os.getloadavg()[0]:.1f}, {args.seconds:g} s of AMI\n")
    print(
        "| stage | setting | other busy loops | wall s | CPU s | torch threads at the end "
        "| wall / first setting, quiet |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for stage in args.stages.split(","):
        base: float | None = None
        for busy in (0, args.hogs):
            running = hogs(busy)
            try:
                for name, env in SETTINGS.items():
                    runs: list[dict[str, Any]] = [
                        measure(stage, args.seconds, env) for _ in range(args.repeat)
                    ]
                    wall = statistics.median(r["wall"] for r in runs)
                    cpu = statistics.median(r["cpu"] for r in runs)
                    base = wall if base is None else base
                    walls = " / ".join(f"{r['wall']:.1f}" for r in runs)
                    ends = runs[-1]["threads_at_end"]
                    row = f"| {stage} | {name} | {busy} | {walls} | {cpu:.1f} | {ends} "
                    print(f"{row}| {wall / base:.2f} |", flush=True)
            finally:
                for hog in running:
                    hog.kill()
                    hog.wait()


if __name__ == "__main__":
    main()
