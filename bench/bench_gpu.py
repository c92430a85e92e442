"""The real pipeline stages on one device: transcribing, aligning, diarizing, with their speed.

Made for a one-shot check on a GPU (device=cuda, float16), where the project's CUDA path
(faster-whisper's batched pipeline, chosen by transcriber.worker.pipeline.transcribe) runs;
it runs the same way on the CPU. It calls the project's own stage functions:
  - transcribe: load_model (or WhisperModel with --compute-type), then transcribe() on
    tests/data/speech_en.wav joined to about --seconds; real-time factor and WER against the
    file's known text (tests/speech_truth.py). --compare-sequential also times faster-whisper's
    plain (unbatched) path on the same audio;
  - align: align() on that transcript; real-time factor and word start error (ms);
  - diarize: load_diarizer("bundled") and diarize() on tests/data/voices.wav (three voices)
    joined to about --seconds; real-time factor, speakers found, share of utterances whose
    speaker matches (best one-to-one mapping).
Each stage first runs once on one copy of the file (warm-up: CUDA kernels compiled, memory
allocated), reported apart. Each part is independent: a failure is printed with its traceback
and recorded, and the other parts still run. Results go to --out as JSON, written after each
part. Needs no aiohttp, aiosqlite, or PyAV (16-bit PCM WAV is read with the wave module when
PyAV is missing); torch and pyannote only for diarize.

    .venv/bin/python bench/bench_gpu.py --device cpu --seconds 60
    python3 bench/bench_gpu.py --device cuda --compute-type float16 --model /path/to/model \\
        --models-dir /tmp/models --seconds 300 --compare-sequential --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
import wave
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tests.speech_truth import SPEECH, TrueWord, start_errors, truth, wer  # noqa: E402
from transcriber.worker.pipeline.types import Transcript, Turn  # noqa: E402

SAMPLE_RATE = 16000
VOICES = ROOT / "tests" / "data" / "voices.wav"
PARTS = ("transcribe", "align", "diarize")
T = TypeVar("T")


def noop(_percent: float, _detail: str) -> None:
    pass


def read_audio(path: Path) -> tuple[np.ndarray, str]:
    """16 kHz mono float32: the project's PyAV decoder where PyAV is installed, else wave."""
    try:
        import av

        real_av = not getattr(av, "__stub__", False)
    except ImportError:
        real_av = False
    if real_av:
        from transcriber.worker.pipeline.audio import load_audio

        return load_audio(path), "project load_audio (PyAV)"
    with wave.open(str(path)) as f:
        if (f.getnchannels(), f.getsampwidth(), f.getframerate()) != (1, 2, SAMPLE_RATE):
            raise ValueError(f"{path}: not 16-bit mono {SAMPLE_RATE} Hz PCM, and PyAV is missing")
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0), "wave module (no PyAV)"


def copies_for(clip: np.ndarray, seconds: float) -> int:
    return max(1, round(seconds * SAMPLE_RATE / len(clip)))


def timed(run: Callable[[], T], sync: Callable[[], None] | None = None) -> tuple[float, T]:
    start = time.perf_counter()
    result = run()
    if sync is not None:
        sync()
    return time.perf_counter() - start, result


def best_of(
    repeat: int, run: Callable[[], T], sync: Callable[[], None] | None = None
) -> tuple[list[float], T]:
    times, result = [], None
    for _ in range(max(1, repeat)):
        seconds, result = timed(run, sync)
        times.append(round(seconds, 3))
    assert result is not None
    return times, result


def speed(seconds: float, audio_seconds: float) -> dict[str, float]:
    return {
        "seconds": round(seconds, 3),
        "rtf": round(seconds / audio_seconds, 5),
        "x_realtime": round(audio_seconds / seconds, 1),
    }


def text_of(transcript: Transcript) -> str:
    return " ".join(s.text for s in transcript.segments)


def tiled_truth(reference: list[TrueWord], copies: int, clip_seconds: float) -> list[TrueWord]:
    return [
        TrueWord(w.word, w.start + k * clip_seconds, w.end + k * clip_seconds)
        for k in range(copies)
        for w in reference
    ]


def environment(device: str, parts: list[str]) -> dict[str, Any]:
    """Versions and devices; torch only when diarizing (ctranslate2 runs without it)."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
    }
    if {"transcribe", "align"} & set(parts):
        import ctranslate2
        import faster_whisper

        env["ctranslate2"] = ctranslate2.__version__
        env["faster_whisper"] = faster_whisper.__version__
        env["ct2_cuda_devices"] = ctranslate2.get_cuda_device_count()
        if device in ("cuda", "auto") and env["ct2_cuda_devices"] > 0:
            env["ct2_cuda_compute_types"] = sorted(ctranslate2.get_supported_compute_types("cuda"))
    if "diarize" in parts:
        import torch

        env["torch"] = torch.__version__
        env["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
            env["gpu_capability"] = list(torch.cuda.get_device_capability(0))
    return env


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.models_dir = Path(args.models_dir)
        self.results: dict[str, Any] = {"args": vars(args), "errors": {}}
        self.model: Any = None
        self.clip: np.ndarray | None = None
        self.audio: np.ndarray | None = None
        self.copies = 0
        self.clip_transcript: Transcript | None = None
        self.transcript: Transcript | None = None

    def save(self) -> None:
        if self.args.out:
            Path(self.args.out).write_text(json.dumps(self.results, indent=2, default=str) + "\n")

    def run_part(self, name: str, part: Callable[[], dict[str, Any]]) -> None:
        print(f"\n=== {name} ===", flush=True)
        try:
            self.results[name] = part()
        except BaseException as exc:  # report it, then carry on with the other parts
            if isinstance(exc, KeyboardInterrupt):
                raise
            text = traceback.format_exc()
            print(f"{name} FAILED:\n{text}", flush=True)
            self.results["errors"][name] = text
        else:
            print(json.dumps(self.results[name], indent=2, default=str), flush=True)
        self.save()

    # --- transcribing ---------------------------------------------------------------------

    def load(self) -> Any:
        from faster_whisper import WhisperModel

        from transcriber.worker.pipeline.models import _cpu_threads, load_model, resolve_model

        if self.args.compute_type == "project":
            return load_model(self.args.model, self.args.device, self.models_dir)
        return WhisperModel(
            resolve_model(self.args.model, self.models_dir),
            device=self.args.device,
            compute_type=self.args.compute_type,
            cpu_threads=_cpu_threads(),
        )

    def transcribe_part(self) -> dict[str, Any]:
        from transcriber.worker.pipeline.transcribe import GPU_BATCH_SIZE, transcribe

        self.clip, decoder = read_audio(SPEECH)
        self.copies = copies_for(self.clip, self.args.seconds)
        self.audio = np.tile(self.clip, self.copies)
        audio_s = len(self.audio) / SAMPLE_RATE
        clip_s = len(self.clip) / SAMPLE_RATE
        load_s, self.model = timed(self.load)
        inner = self.model.model
        name = str(self.args.model)
        print(
            f"model on {inner.device} ({inner.compute_type}), loaded in {load_s:.2f} s", flush=True
        )

        def run(audio: np.ndarray) -> Callable[[], Transcript]:
            return lambda: transcribe(self.model, audio, {}, noop, name)

        warm_s, self.clip_transcript = timed(run(self.clip))
        times, self.transcript = best_of(self.args.repeat, run(self.audio))
        reference = " ".join(w.word for w in truth())
        result: dict[str, Any] = {
            "model": name,
            "device": inner.device,
            "compute_type": inner.compute_type,
            "batched": inner.device == "cuda",
            "batch_size": GPU_BATCH_SIZE if inner.device == "cuda" else None,
            "decoder": decoder,
            "audio_seconds": round(audio_s, 2),
            "copies": self.copies,
            "load_seconds": round(load_s, 3),
            "warmup_seconds": round(warm_s, 3),
            "warmup_rtf": round(warm_s / clip_s, 5),
            "times": times,
            **speed(min(times), audio_s),
            "segments": len(self.transcript.segments),
            "wer": round(wer(text_of(self.transcript), " ".join([reference] * self.copies)), 4),
            "clip_wer": round(wer(text_of(self.clip_transcript), reference), 4),
            "clip_text": text_of(self.clip_transcript),
        }
        if self.args.compare_sequential:
            result["sequential"] = self.sequential(audio_s, reference)
        return result

    def sequential(self, audio_s: float, reference: str) -> dict[str, Any]:
        """faster-whisper's plain path with the project's decode options, for comparison."""
        from transcriber.worker.pipeline.transcribe import _decode_options

        kwargs = _decode_options(self.model, {})

        def run() -> str:
            found, _info = self.model.transcribe(self.audio, **kwargs)
            return " ".join(s.text.strip() for s in found)

        times, text = best_of(self.args.repeat, run)
        return {
            "times": times,
            **speed(min(times), audio_s),
            "wer": round(wer(text, " ".join([reference] * self.copies)), 4),
        }

    # --- aligning -------------------------------------------------------------------------

    def align_part(self) -> dict[str, Any]:
        from transcriber.worker.pipeline.align import align

        if self.model is None or self.transcript is None or self.clip_transcript is None:
            raise RuntimeError("no transcript: the transcribe part did not finish")
        assert self.clip is not None and self.audio is not None
        clip_s = len(self.clip) / SAMPLE_RATE
        audio_s = len(self.audio) / SAMPLE_RATE
        warm_s, _ = timed(lambda: align(self.model, self.clip, self.clip_transcript, noop))
        transcript = self.transcript
        times, aligned = best_of(
            self.args.repeat, lambda: align(self.model, self.audio, transcript, noop)
        )
        errors = start_errors(aligned, tiled_truth(truth(), self.copies, clip_s))
        words = sum(len(s.words) for s in aligned.segments)
        ms = sorted(1000 * e for e in errors)
        return {
            "audio_seconds": round(audio_s, 2),
            "warmup_seconds": round(warm_s, 3),
            "times": times,
            **speed(min(times), audio_s),
            "words": words,
            "matched_words": len(ms),
            "start_error_ms": {
                "mean": round(statistics.fmean(ms), 1) if ms else None,
                "median": round(statistics.median(ms), 1) if ms else None,
                "p90": round(ms[int(0.9 * (len(ms) - 1))], 1) if ms else None,
            },
        }

    # --- diarizing ------------------------------------------------------------------------

    def diarize_part(self) -> dict[str, Any]:
        import torch

        from transcriber.worker.pipeline.diarize import diarize, load_diarizer

        device = self.args.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        sync = torch.cuda.synchronize if device == "cuda" else None
        clip, decoder = read_audio(VOICES)
        copies = copies_for(clip, self.args.seconds)
        audio = np.tile(clip, copies)
        clip_s, audio_s = len(clip) / SAMPLE_RATE, len(audio) / SAMPLE_RATE
        load_s, pipeline = timed(lambda: load_diarizer("bundled", self.models_dir, device), sync)
        warm_s, _ = timed(lambda: diarize(pipeline, clip, {}, noop), sync)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, turns = best_of(self.args.repeat, lambda: diarize(pipeline, audio, {}, noop), sync)
        result: dict[str, Any] = {
            "device": device,
            "decoder": decoder,
            "audio_seconds": round(audio_s, 2),
            "copies": copies,
            "load_seconds": round(load_s, 3),
            "warmup_seconds": round(warm_s, 3),
            "warmup_rtf": round(warm_s / clip_s, 5),
            "times": times,
            **speed(min(times), audio_s),
            "turns": len(turns),
            "speakers": len({t.speaker for t in turns}),
            "utterance_accuracy": utterance_accuracy(turns, copies, clip_s),
        }
        if device == "cuda":
            result["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
        return result


def utterance_accuracy(turns: list[Turn], copies: int, clip_seconds: float) -> float | None:
    """Share of the known utterances whose middle lies in a turn of their mapped speaker.

    Each true speaker maps to the found speaker it most often gets (one-to-one, greedily).
    """
    from transcriber.worker.pipeline.diarize import _speaker_at

    known = json.loads(VOICES.with_suffix(".json").read_text())
    pairs = []
    for k in range(copies):
        for u in known:
            mid = k * clip_seconds + (u["start"] + u["end"]) / 2
            pairs.append((u["speaker"], _speaker_at(mid, mid, turns)))
    if not pairs:
        return None
    mapping: dict[str, str] = {}
    for (true, found), _n in Counter(pairs).most_common():
        if found is not None and true not in mapping and found not in mapping.values():
            mapping[true] = found
    return round(sum(mapping.get(t) == f for t, f in pairs) / len(pairs), 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument(
        "--compute-type",
        default="project",
        help="'project' lets load_model choose (float16 on cuda, int8 on cpu); else a "
        "CTranslate2 compute type for WhisperModel",
    )
    parser.add_argument("--model", default="tiny.en", help="model name or CTranslate2 folder")
    parser.add_argument(
        "--models-dir",
        default=os.environ.get(
            "TRANSCRIBER_MODELS_DIR", str(Path.home() / ".cache" / "transcriber")
        ),
    )
    parser.add_argument("--seconds", type=float, default=300.0, help="audio length per stage")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS)
    )
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per stage (best kept)")
    parser.add_argument("--compare-sequential", action="store_true")
    parser.add_argument("--out", default="", help="JSON file for the results")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")

    bench = Bench(args)
    bench.run_part("env", lambda: environment(args.device, parts))
    runners = {
        "transcribe": bench.transcribe_part,
        "align": bench.align_part,
        "diarize": bench.diarize_part,
    }
    for part in parts:
        bench.run_part(part, runners[part])
    print("\n=== summary ===")
    for part in parts:
        found = bench.results.get(part)
        if found is None:
            print(f"{part:<11} FAILED (traceback above)")
        else:
            print(
                f"{part:<11} RTF {found['rtf']:.4f} ({found['x_realtime']}x real time) "
                f"on {found['audio_seconds']} s"
            )
    return 1 if bench.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
