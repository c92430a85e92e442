"""Pipeline benchmarks on the real models (CPU unless --device cuda):

1. server end-to-end for a 5-minute file vs calling faster-whisper directly on it with the same
   settings, in the same run (ratio; aim <= 1.10 for transcription alone);
2. real-time factor per stage (transcribing, aligning, diarizing) from the server's timings;
3. the second task on a warm worker vs the first (model load paid once).

    .venv/bin/python bench/bench_pipeline.py [--model base] [--device cpu] [--minutes 5]

With --rounds N it measures only transcription, paired: each round runs faster-whisper called
directly (model loaded once, in this process) and the same file through two warm servers, one
streaming the live transcript and one started with --no-live-text, in an order that changes
every round; it prints each run's wall seconds and CPU seconds (this process for the direct
call; the server and its worker processes for a server) and the median of the per-round ratios.

    .venv/bin/python bench/bench_pipeline.py --model tiny.en --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_long_file(folder: Path, minutes: float) -> Path:
    """Real speech: the multi-voice fixture repeated to the wanted length (ffmpeg)."""
    src = ROOT / "tests" / "data" / "voices.wav"
    out = folder / "long.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-stream_loop",
            "-1",
            "-i",
            str(src),
            "-t",
            str(minutes * 60),
            "-ar",
            "16000",
            "-ac",
            "1",
            str(out),
        ],
        check=True,
    )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def request(
    url: str, data: bytes | None = None, method: str = "GET", headers: dict[str, str] | None = None
) -> Any:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=3600) as resp:
        return json.load(resp)


def server_run(url: str, audio: Path, options: str) -> tuple[float, dict[str, Any]]:
    """POST the file as a raw body, long-poll to the end: wall seconds and the final task."""
    start = time.perf_counter()
    snap = request(
        f"{url}/api/tasks?filename=long.wav&{options}",
        audio.read_bytes(),
        "POST",
        {"Content-Type": "audio/wav"},
    )
    while snap["stage"] not in ("complete", "failed", "cancelled"):
        snap = request(f"{url}/api/tasks/{snap['id']}?wait=30&since={snap['seq']}")
    elapsed = time.perf_counter() - start
    assert snap["stage"] == "complete", snap
    return elapsed, request(f"{url}/api/tasks/{snap['id']}/transcript")


def load_direct(model: str, device: str, models_dir: Path) -> Any:
    from faster_whisper import WhisperModel

    from transcriber.worker.pipeline.models import resolve_model

    return WhisperModel(
        resolve_model(model, models_dir),
        device=device,
        compute_type="float16" if device == "cuda" else "int8",
        cpu_threads=len(os.sched_getaffinity(0)),
    )


def direct_transcribe(whisper: Any, audio_path: Path) -> int:
    """Decode the file and transcribe it as the worker does (VAD on); the segment count."""
    from faster_whisper import decode_audio

    audio = decode_audio(str(audio_path), sampling_rate=16000)
    segments, _info = whisper.transcribe(audio, language=None, task="transcribe", vad_filter=True)
    return len(list(segments))


def cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by a server and every process under it (its worker)."""
    import psutil

    total = 0.0
    root = psutil.Process(proc.pid)
    for each in [root, *root.children(recursive=True)]:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def paired(args: argparse.Namespace, audio: Path, tmp: Path, models_dir: Path) -> None:
    import random
    import statistics

    whisper = load_direct(args.model, args.device, models_dir)
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    for name, extra in (("live", []), ("no-live", ["--no-live-text"])):
        port = free_port()
        proc = start_server(tmp / name, port, args.model, args.device, extra)
        servers[name] = (proc, f"http://127.0.0.1:{port}")
    plain = "diarize=false&word_timestamps=false"
    try:
        direct_transcribe(whisper, audio)  # warm-ups: the model, the workers, the page cache
        for _proc, url in servers.values():
            server_run(url, audio, plain)
        runs: dict[str, list[tuple[float, float]]] = {"direct": [], "live": [], "no-live": []}
        order = list(runs)
        for round_ in range(args.rounds):
            random.Random(round_).shuffle(order)
            for name in order:
                wall0, cpu0 = time.perf_counter(), time.process_time()
                if name == "direct":
                    direct_transcribe(whisper, audio)
                    cpu = time.process_time() - cpu0
                else:
                    proc, url = servers[name]
                    before = cpu_seconds(proc)
                    server_run(url, audio, plain)
                    cpu = cpu_seconds(proc) - before
                runs[name].append((time.perf_counter() - wall0, cpu))
                print(
                    f"round {round_ + 1} {name:8} wall {runs[name][-1][0]:6.2f} s  cpu {cpu:6.2f} s"
                )
    finally:
        for proc, _url in servers.values():
            proc.terminate()
            proc.wait(30)

    def ratio(a: str, b: str, k: int) -> float:
        return statistics.median(x[k] / y[k] for x, y in zip(runs[a], runs[b], strict=True))

    print(f"model {args.model}, device {args.device}, {args.rounds} rounds, load {os.getloadavg()}")
    for name, values in runs.items():
        print(
            f"{name:8} median wall {statistics.median(v[0] for v in values):6.2f} s, "
            f"cpu {statistics.median(v[1] for v in values):6.2f} s"
        )
    for a, b in (("live", "direct"), ("no-live", "direct"), ("live", "no-live")):
        print(f"{a} / {b}: wall {ratio(a, b, 0):.3f}, cpu {ratio(a, b, 1):.3f} (medians of pairs)")


def direct_run(model: str, device: str, audio_path: Path, models_dir: Path) -> dict[str, float]:
    """faster-whisper called directly, with the settings the server's worker uses."""
    from faster_whisper import WhisperModel, decode_audio

    from transcriber.worker.pipeline.models import resolve_model

    t0 = time.perf_counter()
    whisper = WhisperModel(
        resolve_model(model, models_dir),
        device=device,
        compute_type="float16" if device == "cuda" else "int8",
        cpu_threads=len(os.sched_getaffinity(0)),
    )
    t1 = time.perf_counter()
    audio = decode_audio(str(audio_path), sampling_rate=16000)
    segments, _info = whisper.transcribe(audio, language=None, task="transcribe", vad_filter=True)
    assert list(segments)
    t2 = time.perf_counter()
    return {"load": t1 - t0, "transcribe": t2 - t1}


def start_server(
    data: Path, port: int, model: str, device: str, extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--model",
            model,
            "--device",
            device,
            *(extra or []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYANNOTE_METRICS_ENABLED": "false"},
    )
    for _ in range(300):
        try:
            request(f"http://127.0.0.1:{port}/api/health")
            return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=0, help="paired transcription rounds")
    args = parser.parse_args()
    models_dir = Path(
        os.environ.get("TRANSCRIBER_MODELS_DIR", Path.home() / ".cache" / "transcriber")
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        audio = make_long_file(tmp, args.minutes)
        if args.rounds:
            paired(args, audio, tmp, models_dir)
            return
        duration = args.minutes * 60
        direct = direct_run(args.model, args.device, audio, models_dir)
        port = free_port()
        proc = start_server(tmp / "data", port, args.model, args.device)
        url = f"http://127.0.0.1:{port}"
        try:
            plain = "diarize=false&word_timestamps=false"
            cold, _ = server_run(url, audio, plain)
            warm, warm_result = server_run(url, audio, plain)
            full, full_result = server_run(url, audio, "diarize=true")
        finally:
            proc.terminate()
            proc.wait(30)
        report(args, duration, direct, cold, warm, warm_result, full, full_result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(
    args: argparse.Namespace,
    duration: float,
    direct: dict[str, float],
    cold: float,
    warm: float,
    warm_result: dict[str, Any],
    full: float,
    full_result: dict[str, Any],
) -> None:
    timings = full_result["timings"]
    print(f"model {args.model}, device {args.device}, audio {duration:.0f} s")
    print(
        f"direct faster-whisper: load {direct['load']:.1f} s, transcribe "
        f"{direct['transcribe']:.1f} s (RTF {direct['transcribe'] / duration:.3f})"
    )
    print(
        f"server, transcription only, warm worker: {warm:.1f} s end to end "
        f"(stage {warm_result['timings']['transcribing']:.1f} s); ratio to direct "
        f"{warm / direct['transcribe']:.3f}"
    )
    print(
        f"server, first task (cold worker): {cold:.1f} s; vs direct load+transcribe "
        f"{cold / (direct['load'] + direct['transcribe']):.3f}; warm/cold {warm / cold:.3f}"
    )
    print(f"server, full pipeline: {full:.1f} s end to end, speakers {full_result['speakers']}")
    for stage, seconds in timings.items():
        print(f"  {stage:<13} {seconds:7.1f} s  RTF {seconds / duration:.3f}")


if __name__ == "__main__":
    main()
