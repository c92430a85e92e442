"""Transcribing stage: decode 16 kHz audio into segments with a loaded faster-whisper model.

Finding and loading the model is models.py's job, as faster-whisper keeps download_model
apart from WhisperModel.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel

from transcriber.worker.pipeline.types import (
    LiveText,
    PipelineError,
    ProgressFn,
    Resume,
    Segment,
    Transcript,
    clock,
)

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# Batches of 30 s windows only pay off where the accelerator has room to run them in parallel;
# on the CPU the plain path gives better text at a similar speed (bench/bench_align.py).
GPU_BATCH_SIZE = 16
# faster-whisper computes the log-mel features of the whole input at once: about 60 MB of
# intermediates per minute of audio (an hour peaked at 3.8 GB, bench/bench_longfile.py; six
# hours would need over 20). Longer audio is transcribed in pieces of about this length, cut at
# the quietest second near each boundary; each piece is prompted with the text before it. Voice
# detection and features of a piece are one call each, before its first window: 5 minutes
# keeps that under 2 s of silence in the progress on a busy 2-core CPU (10 minutes: 3-5 s).
PIECE_SECONDS = 300.0
_CUT_SEARCH_SECONDS = 60.0
_PROMPT_CHARS = 200
# openai-whisper's --temperature_increment_on_fallback default, which faster-whisper follows.
TEMPERATURE_STEP = 0.2


def transcribe(
    model: WhisperModel,
    audio: np.ndarray,
    options: dict[str, Any],
    progress: ProgressFn,
    model_name: str,
    live: LiveText | None = None,
    resume: Resume | None = None,
) -> Transcript:
    """Segments without word timings (the Aligning stage adds those).

    Each segment goes to `live` as it is decoded, and each piece's end after its last one. With
    `resume`, the pieces an earlier run finished are not decoded again: their segments are kept
    as they were, and the next piece is prompted with their text.

    Progress follows the lazy segment generator (each segment's end over the duration), and
    between segments each 30 s window the decoder starts and each decoding attempt (Whisper
    decodes a window again at a higher temperature when the text repeats itself) is a sub-step
    in the detail line: the watchdog and a watching person see it is alive.
    """
    duration = len(audio) / SAMPLE_RATE
    kwargs = _decode_options(model, options)
    cuts = pieces(audio, PIECE_SECONDS)
    segments, language, start = _resumed(resume, cuts, kwargs)
    steps = _Steps(duration, progress)
    steps.reached = cuts[start][0] / SAMPLE_RATE if start < len(cuts) else duration
    steps.segments = len(segments)
    with _ticking(model, steps.tick):
        for piece, (first, last) in enumerate(cuts[start:], start):
            found, info = _decode(model, audio[first:last], kwargs)
            if language is None:
                language = info.language
                log.info("Language %s (p=%.2f)", info.language, info.language_probability)
                progress(0, f"Language: {info.language}")
                # One language for the whole file, as Whisper decides it on the first 30 s.
                kwargs["language"] = info.language
            each = (lambda seg, k=piece: live.segment(k, seg)) if live is not None else None
            segments += _collect(found, first / SAMPLE_RATE, len(segments), steps, each)
            if live is not None:
                live.piece_done(piece, language)
            kwargs["initial_prompt"] = _tail(segments, _PROMPT_CHARS) or kwargs["initial_prompt"]
    progress(100, f"{len(segments)} segments")
    return Transcript(language or "en", duration, model_name, segments)


class _Steps:
    """Where the transcript has reached, as the progress calls and detail lines say it."""

    def __init__(self, duration: float, progress: ProgressFn) -> None:
        self.duration = duration
        self.progress = progress
        self.reached = 0.0
        self.segments = 0
        self.windows = 0
        self.attempts = 0

    def segment(self, end: float) -> None:
        self.reached = max(self.reached, end)
        self.segments += 1
        percent = 100 * self.reached / self.duration if self.duration > 0 else 100.0
        self.progress(percent, f"Segment {self.segments} - {self._where()}")

    def tick(self, step: str) -> None:
        """Called before each encoder pass ("encode") and decoding attempt ("generate")."""
        if step == "encode":
            self.windows, self.attempts = self.windows + 1, 0
            self.progress(-1, f"Window {self.windows} - {self._where()}")
        elif step == "generate":
            self.attempts += 1
            if self.attempts > 1:
                note = f"Window {self.windows}, attempt {self.attempts} - {self._where()}"
                self.progress(-1, note)

    def _where(self) -> str:
        return f"{clock(self.reached)} of {clock(self.duration)}"


class _Ticking:
    """CTranslate2's Whisper model with a call before each `encode` and `generate`.

    faster-whisper has no hook inside a 30 s window; these two calls are where its time goes.
    Everything else is the wrapped model's own.
    """

    def __init__(self, inner: Any, tick: Callable[[str], None]) -> None:
        self._inner = inner
        self._tick = tick

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        self._tick("encode")
        return self._inner.encode(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self._tick("generate")
        return self._inner.generate(*args, **kwargs)


@contextlib.contextmanager
def _ticking(model: WhisperModel, tick: Callable[[str], None]) -> Iterator[None]:
    """The model (cached between jobs) ticks for this call only."""
    inner = model.model
    model.model = _Ticking(inner, tick)
    try:
        yield
    finally:
        model.model = inner


def _resumed(
    resume: Resume | None, cuts: list[tuple[int, int]], kwargs: dict[str, Any]
) -> tuple[list[Segment], str | None, int]:
    """(segments kept, language, first piece to decode) for a run that resumes; nothing kept
    when the earlier run's pieces do not fit this audio."""
    if resume is None or not 0 < resume.pieces <= len(cuts) or resume.language is None:
        return [], None, 0
    kwargs["language"] = resume.language
    kwargs["initial_prompt"] = _tail(resume.segments, _PROMPT_CHARS) or kwargs["initial_prompt"]
    log.info("resuming after piece %d of %d", resume.pieces, len(cuts))
    return list(resume.segments), resume.language, resume.pieces


def _tail(segments: list[Segment], chars: int) -> str:
    """The last `chars` characters of the text so far, joining only the segments they need."""
    parts: list[str] = []
    size = 0
    for segment in reversed(segments):
        parts.append(segment.text)
        size += len(segment.text) + 1
        if size > chars:
            break
    return " ".join(reversed(parts))[-chars:]


def _decode(model: WhisperModel, audio: np.ndarray, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    found: tuple[Any, Any]
    if model.model.device == "cuda":
        pipeline = BatchedInferencePipeline(model)
        found = pipeline.transcribe(audio, batch_size=GPU_BATCH_SIZE, **kwargs)
    else:
        found = model.transcribe(audio, **kwargs)
    return found


def pieces(audio: np.ndarray, length: float) -> list[tuple[int, int]]:
    """(first, last) sample ranges of about `length` seconds, cut where it is quietest."""
    size, total = int(length * SAMPLE_RATE), len(audio)
    reach = min(int(_CUT_SEARCH_SECONDS * SAMPLE_RATE), size // 2)
    cuts = [0]
    while total - cuts[-1] > size * 1.5:
        cuts.append(_quietest(audio, cuts[-1] + size, reach))
    return list(zip(cuts, [*cuts[1:], total], strict=True))


def _quietest(audio: np.ndarray, near: int, reach: int) -> int:
    """The middle of the quietest second within `reach` samples of sample `near`."""
    hop = SAMPLE_RATE // 10
    start = max(0, near - reach)
    around = audio[start : near + reach]
    frames = len(around) // hop
    energy = np.square(around[: frames * hop].reshape(frames, hop)).mean(axis=1)
    second = np.convolve(energy, np.ones(10), mode="valid")  # 1 s of 100 ms frames
    return start + (int(np.argmin(second)) + 5) * hop


def _decode_options(model: WhisperModel, options: dict[str, Any]) -> dict[str, Any]:
    language = options.get("language") or None
    if language == "auto":
        language = None
    if language is not None and language not in model.supported_languages:
        raise PipelineError(
            "BAD_REQUEST",
            f"This model cannot transcribe the language {language!r}.",
            f"supported: {', '.join(model.supported_languages)}",
        )
    task = options.get("task") or "transcribe"
    if task not in ("transcribe", "translate"):
        raise PipelineError("BAD_REQUEST", f"Unknown task {task!r}.", "transcribe or translate")
    if task == "translate" and not model.model.is_multilingual:
        log.warning("An English-only model cannot translate; transcribing instead")
    return {
        "language": language,
        "task": task,
        "initial_prompt": options.get("initial_prompt") or None,
        # Hint words for the decoder (faster-whisper puts them in the prompt).
        "hotwords": options.get("hotwords") or None,
        "temperature": temperatures(float(options.get("temperature") or 0.0)),
        # Silero VAD (shipped inside faster-whisper) skips silence: without it Whisper
        # invents text ("You", "Thank you.") over long quiet stretches.
        "vad_filter": True,
    }


def temperatures(start: float) -> tuple[float, ...]:
    """The temperatures a window may be decoded at, as Whisper's own command line reads one
    temperature: `start`, then (where the text repeats itself or is too unlikely) 0.2 higher
    each time, up to 1. From 0 this is faster-whisper's default schedule."""
    steps = int((1.0 - start) / TEMPERATURE_STEP + 1e-9)
    return tuple(round(start + k * TEMPERATURE_STEP, 3) for k in range(steps + 1))


def _collect(
    found: Iterable[Any],
    offset: float,
    first: int,
    steps: _Steps,
    each: Callable[[Segment], None] | None = None,
) -> list[Segment]:
    """The piece's segments, timed from the start of the file and numbered from `first`;
    each handed to `each` as soon as it is decoded."""
    generator = iter(found)
    out: list[Segment] = []
    try:
        for seg in generator:
            end = min(float(seg.end) + offset, steps.duration)
            start = round(float(seg.start) + offset, 3)
            out.append(Segment(first + len(out), start, round(end, 3), seg.text.strip()))
            if each is not None:
                each(out[-1])
            steps.segment(end)
    finally:
        # A cancel leaves the decoder mid-file: close it so its state is freed now.
        close = getattr(generator, "close", None)
        if close is not None:
            close()
    return out
