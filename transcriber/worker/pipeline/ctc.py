"""CTC forced alignment with a wav2vec2 model, for users who configure one.

The pure part (text -> tokens -> forced_align over emissions -> word spans -> seconds) is kept
apart from model loading so it can be tested on synthetic emissions without any weights.
Models: a torchaudio bundle name (e.g. WAV2VEC2_ASR_BASE_960H, MMS_FA; its weights are cached
in models_dir/torchaudio) or a local Hugging Face Wav2Vec2ForCTC folder.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from transcriber.worker.pipeline.ctc_models import load_ctc_model
from transcriber.worker.pipeline.types import ProgressFn, Segment, Transcript, Word

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# Audio kept around each segment: Whisper's segment edges are often off by a few hundred ms,
# and blanks absorb the extra audio.
PAD_SECONDS = 0.3


@dataclass(frozen=True)
class Vocabulary:
    """Single-character labels of a CTC head, and which index is the blank."""

    ids: dict[str, int]
    blank: int

    @classmethod
    def from_labels(cls, labels: Sequence[str], blank: int = 0) -> Vocabulary:
        ids = {label: i for i, label in enumerate(labels) if len(label) == 1 and i != blank}
        # The word separator is left to the blank: it absorbs pauses of any length.
        ids.pop("|", None)
        return cls(ids, blank)

    def tokens(self, word: str) -> list[int]:
        """Label ids for a word; characters the model has no label for are skipped."""
        letters = [c for c in self.ids if c.isalpha()]
        upper = bool(letters) and all(c.isupper() for c in letters)
        text = word.upper() if upper else word.lower()
        out: list[int] = []
        for char in text:
            if char not in self.ids:
                # "café" for an English model: try the base letter without its accent.
                char = unicodedata.normalize("NFKD", char)[:1]
            if char in self.ids:
                out.append(self.ids[char])
        return out


@dataclass(frozen=True)
class Span:
    """A word's frames in the emission: [start, end), and its mean label probability."""

    start: int
    end: int
    score: float


def word_spans(emission: torch.Tensor, words: list[list[int]], blank: int) -> list[Span | None]:
    """Force-align the words' tokens to `emission` (frames x labels, log-probabilities).

    A word without tokens gets None; so does every word when the audio is too short for the
    text (CTC needs at least one frame per token).
    """
    import torchaudio.functional as F

    targets = [t for tokens in words for t in tokens]
    if not targets:
        return [None] * len(words)
    target = torch.tensor([targets], dtype=torch.int32)
    try:
        path, scores = F.forced_align(emission.unsqueeze(0).float().cpu(), target, blank=blank)
    except RuntimeError as exc:
        log.warning("CTC alignment failed: %s", exc)
        return [None] * len(words)
    tokens = F.merge_tokens(path[0], scores[0].exp(), blank=blank)
    spans: list[Span | None] = []
    index = 0
    for word in words:
        if not word:
            spans.append(None)
            continue
        mine = tokens[index : index + len(word)]
        index += len(word)
        frames = sum(t.end - t.start for t in mine)
        score = sum(t.score * (t.end - t.start) for t in mine) / max(frames, 1)
        spans.append(Span(mine[0].start, mine[-1].end, score))
    return spans


def to_words(
    texts: list[str],
    spans: list[Span | None],
    seconds_per_frame: float,
    offset: float,
    bounds: tuple[float, float],
) -> list[Word]:
    """Words in seconds. A word without a span (no letters the model knows) sits, zero-length,
    where the word before it ends; with no span at all, the words share `bounds` evenly."""
    if all(s is None for s in spans):
        step = (bounds[1] - bounds[0]) / max(len(texts), 1)
        return [
            Word(text, round(bounds[0] + i * step, 3), round(bounds[0] + (i + 1) * step, 3))
            for i, text in enumerate(texts)
        ]
    timed = [
        None
        if s is None
        else (offset + s.start * seconds_per_frame, offset + s.end * seconds_per_frame, s.score)
        for s in spans
    ]
    words: list[Word] = []
    for i, (text, timing) in enumerate(zip(texts, timed, strict=True)):
        if timing is None:
            at = words[-1].end if words else next(t[0] for t in timed[i + 1 :] if t is not None)
            words.append(Word(text, round(at, 3), round(at, 3)))
        else:
            words.append(Word(text, round(timing[0], 3), round(timing[1], 3), round(timing[2], 4)))
    return words


class CtcAligner:
    """Word timings from a wav2vec2 CTC model; the same align(audio, transcript, progress) as
    the Whisper aligner (which also takes its model)."""

    def __init__(self, source: str, models_dir: Path, device: str = "cpu") -> None:
        self.device = torch.device(device)
        loaded = load_ctc_model(source, models_dir)
        self.model = loaded.model.to(self.device).eval()
        self.vocabulary = Vocabulary.from_labels(loaded.labels, loaded.blank)
        self.sample_rate = loaded.sample_rate
        self.normalize = loaded.normalize

    def emission(self, audio: np.ndarray) -> torch.Tensor:
        """Log-probabilities, frames x labels."""
        wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        if self.sample_rate != SAMPLE_RATE:
            import torchaudio.functional as F

            wave = F.resample(wave, SAMPLE_RATE, self.sample_rate)
        if self.normalize:
            wave = (wave - wave.mean()) / torch.sqrt(wave.var() + 1e-7)
        with torch.inference_mode():
            logits, _ = self.model(wave.to(self.device))
        # Bundles differ: some give logits, MMS_FA log-probabilities; log_softmax suits both.
        return torch.log_softmax(logits[0], dim=-1).cpu()

    def align(self, audio: np.ndarray, transcript: Transcript, progress: ProgressFn) -> Transcript:
        total = len(transcript.segments)
        segments: list[Segment] = []
        for index, segment in enumerate(transcript.segments):
            progress(100 * index / total, f"Aligning segment {index + 1}/{total}")
            segments.append(self._segment(audio, segment))
        progress(100, f"Aligned {total} segments")
        return replace(transcript, segments=segments)

    def _segment(self, audio: np.ndarray, segment: Segment) -> Segment:
        texts = segment.text.split()
        if not texts:
            return replace(segment, words=[])
        first = max(0, int((segment.start - PAD_SECONDS) * SAMPLE_RATE))
        last = min(len(audio), int((segment.end + PAD_SECONDS) * SAMPLE_RATE))
        emission = self.emission(audio[first:last])
        spans = word_spans(
            emission, [self.vocabulary.tokens(t) for t in texts], self.vocabulary.blank
        )
        seconds_per_frame = (last - first) / SAMPLE_RATE / max(emission.shape[0], 1)
        words = to_words(
            texts, spans, seconds_per_frame, first / SAMPLE_RATE, (segment.start, segment.end)
        )
        return replace(segment, words=words)
