"""Word timing error and speed of the Transcribing and Aligning stages, side by side.

On tests/data/speech_en.wav, whose word start times are known to the sample
(scripts/make_speech.sh), for each model:
  - transcribe (plain path, and the batched pipeline for comparison): time, real-time factor, WER;
  - align (the Aligning stage, Whisper cross-attention): time, real-time factor, and the
    absolute word start error (mean / median / p90, ms) against the truth, with and without
    the pause refinement;
  - faster-whisper's word_timestamps=True during transcription, as the reference point.
Times are the best of --repeat runs (a shared machine is noisy); RTF is wall time over audio
time, CPU the CPU seconds (all threads) per audio second, which other load disturbs less.
--copies N joins N copies of the file (truth shifted to match) for longer input: several
30 s windows. Runs offline.

    .venv/bin/python bench/bench_align.py [--models tiny.en base] [--repeat 3] [--copies 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from faster_whisper import BatchedInferencePipeline, WhisperModel  # noqa: E402

from tests.speech_truth import SPEECH, TrueWord, start_errors, truth, wer  # noqa: E402
from transcriber.worker.pipeline.align import align  # noqa: E402
from transcriber.worker.pipeline.audio import load_audio  # noqa: E402
from transcriber.worker.pipeline.models import load_model  # noqa: E402
from transcriber.worker.pipeline.transcribe import transcribe  # noqa: E402
from transcriber.worker.pipeline.types import Segment, Transcript, Word  # noqa: E402

T = TypeVar("T")


def best_of(repeat: int, run: Callable[[], T]) -> tuple[tuple[float, float], T]:
    """(wall seconds, CPU seconds of all threads) of the fastest run, and its result."""
    times, result = [], None
    for _ in range(repeat):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        result = run()
        times.append((time.perf_counter() - begin, time.process_time() - begin_cpu))
    assert result is not None
    return min(times), result


def quiet(_percent: float, _detail: str) -> None:
    pass


def text(transcript: Transcript) -> str:
    return " ".join(s.text for s in transcript.segments)


def copied_truth(copies: int, shift: float) -> list[TrueWord]:
    return [
        TrueWord(w.word, w.start + i * shift, w.end + i * shift)
        for i in range(copies)
        for w in truth()
    ]


def errors_ms(transcript: Transcript, reference: list[TrueWord]) -> str:
    errors = sorted(e * 1000 for e in start_errors(transcript, reference))
    if not errors:
        return "no words matched"
    p90 = errors[min(len(errors) - 1, int(0.9 * len(errors)))]
    return (
        f"start error mean {statistics.mean(errors):4.0f} ms, median "
        f"{statistics.median(errors):4.0f} ms, p90 {p90:4.0f} ms ({len(errors)} words)"
    )


def whisper_word_timestamps(model: WhisperModel, audio: np.ndarray, name: str) -> Transcript:
    found, info = model.transcribe(audio, word_timestamps=True)
    segments = [
        Segment(
            i,
            s.start,
            s.end,
            s.text.strip(),
            [Word(w.word.strip(), w.start, w.end, w.probability) for w in s.words or []],
        )
        for i, s in enumerate(found)
    ]
    return Transcript(info.language, len(audio) / 16000, name, segments)


def batched(model: WhisperModel, audio: np.ndarray) -> str:
    found, _info = BatchedInferencePipeline(model).transcribe(audio, batch_size=8)
    return " ".join(s.text.strip() for s in found)


def bench_model(
    name: str, audio: np.ndarray, reference_words: list[TrueWord], models_dir: Path, repeat: int
) -> None:
    duration = len(audio) / 16000
    reference = " ".join(w.word for w in reference_words)
    model = load_model(name, "cpu", models_dir)
    options: dict[str, Any] = {"language": None}
    rows = []
    t, plain = best_of(repeat, lambda: transcribe(model, audio, options, quiet, name))
    rows.append(
        (
            "transcribe (plain)",
            t,
            f"WER {wer(text(plain), reference):.1%}, language {plain.language}",
        )
    )
    t, aligned = best_of(repeat, lambda: align(model, audio, plain, quiet))
    rows.append(("align (Aligning stage)", t, errors_ms(aligned, reference_words)))
    t, bare = best_of(repeat, lambda: align(model, audio, plain, quiet, refine=False))
    rows.append(("align, no pause refinement", t, errors_ms(bare, reference_words)))
    t, words = best_of(repeat, lambda: whisper_word_timestamps(model, audio, name))
    rows.append(("transcribe word_timestamps", t, errors_ms(words, reference_words)))
    t, batch_text = best_of(repeat, lambda: batched(model, audio))
    rows.append(("transcribe (batched, 8)", t, f"WER {wer(batch_text, reference):.1%}"))
    print(f"\n{name} on CPU int8, {duration:.1f} s of speech, best of {repeat}:")
    for label, (wall, cpu), note in rows:
        print(
            f"  {label:27s} {wall:6.2f} s  RTF {wall / duration:5.3f}  "
            f"CPU {cpu / duration:5.3f} s/s  {note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--models-dir", type=Path, default=Path.home() / ".cache" / "transcriber")
    args = parser.parse_args()
    one = load_audio(SPEECH)
    audio = np.concatenate([one] * args.copies)
    reference = copied_truth(args.copies, len(one) / 16000)
    print(f"CPU cores available: {len(os.sched_getaffinity(0))}")
    for name in args.models:
        bench_model(name, audio, reference, args.models_dir, args.repeat)


if __name__ == "__main__":
    main()
