"""Aligning stage: word timings for a finished transcript.

The default aligner needs no extra model: Whisper's own cross-attention, as faster-whisper
uses for word_timestamps=True, applied to the transcript's text (forced, not re-decoded).
Segments that fit together in one 30 s encoder window share one encoder pass.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer

from transcriber.worker.pipeline.types import ProgressFn, Segment, Transcript, Word

if TYPE_CHECKING:
    from transcriber.worker.pipeline.ctc import CtcAligner

__all__ = ["CtcAligner", "align"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_SECONDS = 30.0
# Audio kept before a segment's start: Whisper's segment starts are often a little late, and
# the first word needs its onset inside the window.
LEAD_SECONDS = 0.5
# The decoder's context is 448 tokens; keep room for the start-of-transcript prefix.
MAX_WINDOW_TOKENS = 440
# Cross-attention gives each word the time up to the next word, so pauses go to one of the
# two and the boundary may sit a few hundred ms off. Where the audio has a pause near a
# boundary, the boundary moves into it; then each word loses the quiet frames at its edges.
# Loudness is judged on 10 ms frames, relative to the window's own quiet and loud levels.
FRAME_SECONDS = 0.01
# Farther snaps pulled tiny.en's late boundaries into the next pause (bench/bench_align.py).
SNAP_SECONDS = 0.15
MIN_PAUSE_SECONDS = 0.06
# A window whose loud and quiet frames differ by less than this has no clear pauses
# (steady noise, music): its words are left as aligned.
MIN_RANGE_DB = 20.0
# faster-whisper's own defaults, so punctuation joins the word before or after it as it does
# with word_timestamps=True.
_DEFAULTS = inspect.signature(WhisperModel.transcribe).parameters
PREPEND_PUNCTUATIONS: str = _DEFAULTS["prepend_punctuations"].default
APPEND_PUNCTUATIONS: str = _DEFAULTS["append_punctuations"].default


@dataclass
class _Window:
    start_frame: int
    members: list[int] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)


def __getattr__(name: str) -> Any:
    # The CTC aligner needs torch, seconds to import; the Whisper aligner must not wait for it.
    if name == "CtcAligner":
        from transcriber.worker.pipeline.ctc import CtcAligner

        return CtcAligner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def align(
    model: WhisperModel,
    audio: np.ndarray,
    transcript: Transcript,
    progress: ProgressFn,
    *,
    refine: bool = True,
) -> Transcript:
    """A copy of `transcript` with Word timings in every segment that has text.

    refine=False gives the bare cross-attention timings (for comparison in bench/).
    """
    tokenizer = _tokenizer(model, transcript.language)
    segments = [replace(s, words=[]) for s in transcript.segments]
    windows = _windows(segments, tokenizer, model.frames_per_second)
    total = len(segments)
    last_speech = 0.0
    for window in windows:
        # Reported before the encoder pass, the slow part, so a cancel stops the next one.
        first = window.members[0]
        progress(100 * first / total, f"Aligning segment {first + 1}/{total}")
        last_speech = _align_window(model, tokenizer, audio, segments, window, last_speech, refine)
    progress(100, f"Aligned {total} segments")
    return replace(transcript, segments=_in_order(segments))


def _in_order(segments: list[Segment]) -> list[Segment]:
    """No word starts before the one before it ends, and each segment spans its words.

    faster-whisper's boundary heuristics can let a segment's first word reach back over the
    last word of the segment before; subtitles and speaker assignment need them in order.
    """
    for before, after in itertools.pairwise([w for s in segments for w in s.words]):
        after.start = max(after.start, before.end)
        after.end = max(after.end, after.start)
    return [
        replace(s, start=s.words[0].start, end=s.words[-1].end) if s.words else s for s in segments
    ]


def _tokenizer(model: WhisperModel, language: str) -> Tokenizer:
    multilingual = bool(model.model.is_multilingual)
    if multilingual and language not in model.supported_languages:
        log.warning("Language %r unknown to the model; aligning as English", language)
        language = "en"
    return Tokenizer(model.hf_tokenizer, multilingual, task="transcribe", language=language)


def _windows(segments: list[Segment], tokenizer: Tokenizer, fps: int) -> list[_Window]:
    """Consecutive segments grouped so each group fits one encoder window and one decoder."""
    windows: list[_Window] = []
    for index, segment in enumerate(segments):
        text = segment.text.strip()
        if not text:
            continue
        tokens = tokenizer.encode(" " + text)
        current = windows[-1] if windows else None
        if (
            current is None
            or segment.end - current.start_frame / fps > WINDOW_SECONDS
            or current.n_tokens + len(tokens) > MAX_WINDOW_TOKENS
        ):
            current = _Window(round(max(0.0, segment.start - LEAD_SECONDS) * fps))
            windows.append(current)
        current.members.append(index)
        current.tokens.append(tokens)
    return windows


def _align_window(
    model: WhisperModel,
    tokenizer: Tokenizer,
    audio: np.ndarray,
    segments: list[Segment],
    window: _Window,
    last_speech: float,
    refine: bool,
) -> float:
    first = window.start_frame * model.feature_extractor.hop_length
    chunk = audio[first : first + model.feature_extractor.n_samples]
    per_segment, last = _cross_attention(model, tokenizer, chunk, segments, window, last_speech)
    if refine:
        words = [w for found in per_segment for w in found]
        _refine(words, _loud_frames(chunk), first / SAMPLE_RATE)
    for index, found in zip(window.members, per_segment, strict=True):
        segments[index] = replace(segments[index], words=found)
    return last


def _cross_attention(
    model: WhisperModel,
    tokenizer: Tokenizer,
    chunk: np.ndarray,
    segments: list[Segment],
    window: _Window,
    last_speech: float,
) -> tuple[list[list[Word]], float]:
    """faster-whisper's word timing for the window's segments: one encoder pass, one align."""
    features = model.feature_extractor(chunk)
    # As faster-whisper does: the last feature frame is padding, not content.
    num_frames = min(model.feature_extractor.nb_max_frames, features.shape[-1] - 1)
    encoder_output = model.encode(pad_or_trim(features[:, :num_frames]))
    subsegments: list[dict[str, Any]] = [
        {
            "seek": window.start_frame,
            "start": segments[i].start,
            "end": segments[i].end,
            "tokens": tokens,
        }
        for i, tokens in zip(window.members, window.tokens, strict=True)
    ]
    last: float = model.add_word_timestamps(
        [subsegments],
        tokenizer,
        encoder_output,
        num_frames,
        PREPEND_PUNCTUATIONS,
        APPEND_PUNCTUATIONS,
        last_speech_timestamp=last_speech,
    )
    return [[_word(w) for w in sub.get("words", [])] for sub in subsegments], last


def _word(aligned: dict[str, Any]) -> Word:
    return Word(
        aligned["word"].strip(),
        round(float(aligned["start"]), 3),
        round(float(aligned["end"]), 3),
        round(float(aligned["probability"]), 4),
    )


def _loud_frames(chunk: np.ndarray) -> np.ndarray:
    """Per 10 ms frame: True where louder than a quarter of the way from quiet to loud.

    Quiet is the 3rd percentile, not the minimum, so a few clicks of silence do not count.
    """
    size = round(FRAME_SECONDS * SAMPLE_RATE)
    count = len(chunk) // size
    if count == 0:
        return np.ones(0, dtype=bool)
    frames = chunk[: count * size].reshape(count, size).astype(np.float64)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    quiet, loud = np.percentile(db, 3), np.percentile(db, 99)
    if loud - quiet < MIN_RANGE_DB:
        return np.ones(count, dtype=bool)
    result: np.ndarray = db > quiet + 0.25 * (loud - quiet)
    return result


def _pauses(loud: np.ndarray, offset: float) -> list[tuple[float, float]]:
    """Quiet runs of at least MIN_PAUSE_SECONDS, in seconds."""
    edges = np.flatnonzero(np.diff(np.concatenate(([1], loud.astype(np.int8), [1]))))
    runs = zip(edges[::2], edges[1::2], strict=True)
    min_frames = MIN_PAUSE_SECONDS / FRAME_SECONDS
    return [
        (offset + a * FRAME_SECONDS, offset + b * FRAME_SECONDS)
        for a, b in runs
        if b - a >= min_frames
    ]


def _refine(words: list[Word], loud: np.ndarray, offset: float) -> None:
    """Move touching word boundaries into a nearby pause, then trim quiet edges (in place)."""
    pauses = _pauses(loud, offset)
    for before, after in itertools.pairwise(words):
        boundary = after.start
        if pauses and abs(boundary - before.end) < 2 * FRAME_SECONDS:
            gap = min(pauses, key=lambda p: max(p[0] - boundary, boundary - p[1], 0.0))
            near = max(gap[0] - boundary, boundary - gap[1]) <= SNAP_SECONDS
            if near and before.start < gap[0] and gap[1] < after.end:
                before.end, after.start = gap
    for word in words:
        first = max(0, round((word.start - offset) / FRAME_SECONDS))
        inside = np.flatnonzero(loud[first : round((word.end - offset) / FRAME_SECONDS)])
        if len(inside) > 0:
            word.start = max(word.start, offset + (first + inside[0]) * FRAME_SECONDS)
            word.end = min(word.end, offset + (first + inside[-1] + 1) * FRAME_SECONDS)
        word.start, word.end = round(word.start, 3), round(word.end, 3)
