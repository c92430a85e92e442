"""The bundled diarizer: short-window CAM++ embeddings over the speech that segmentation finds.

pyannote's own pipeline embeds each 10 s chunk's local speakers; on real meetings segmentation-3.0
often hands it one local speaker that holds two voices, and even with the true clusters that
approach scored 41% DER on the AMI excerpts. Here segmentation only says where speech is and how
many people talk at once; speakers come from 1.5 s windows (hop 0.75 s) clustered spectrally
(cluster.py), as in 3D-Speaker, leaving out windows of overlapped or very short speech.
segmentation-3.0's local speaker tracks then carry those labels to its frames (reseg.py):
boundaries and overlaps come from the model, not from window centres.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pyannote.audio.pipelines import SpeakerDiarization
from pyannote.core import Annotation, SlidingWindowFeature

from transcriber.worker.pipeline.campplus import CAMPPlus
from transcriber.worker.pipeline.cluster import SpeakerBounds, cluster_windows
from transcriber.worker.pipeline.reseg import (
    frame_times,
    left_out,
    nearest_window,
    relabel_tracks,
    smooth_labels,
)

SAMPLE_RATE = 16000
WINDOW = 1.5
HOP = 0.75
# Windows embedded per forward pass: 32 x 1.5 s keeps CUDA busy; on the CPU 8 costs less CPU
# time than 32 (3.7 vs 4.8 s for 2 minutes, one thread) and reports every second or so, where a
# batch of 32 went 5-13 s without a word on a busy 2-core machine (docs/benchmarks.md).
CUDA_BATCH = 32
CPU_BATCH = 8
# Segmentation chunk step, as a share of its 10 s chunk. A 1 s step averages ten chunks per frame
# (steadier speech/overlap counts: dev01 40% -> see docs) for about 0.02 x real time more on the
# CPU; it is used on CUDA, and on the CPU for recordings up to SHORT_SECONDS.
FINE_STEP = 0.1
COARSE_STEP = 0.5
SHORT_SECONDS = 120.0

Hook = Callable[..., None]


def segmentation_step(device: torch.device, seconds: float) -> float:
    """The segmentation step for this device and recording length (see FINE_STEP)."""
    return FINE_STEP if device.type == "cuda" or seconds <= SHORT_SECONDS else COARSE_STEP


def speech_regions(count: SlidingWindowFeature, seconds: float) -> list[tuple[float, float]]:
    """Stretches where at least one speaker talks, clipped to the recording."""
    frames = count.sliding_window
    active = np.concatenate([[False], count.data[:, 0] > 0, [False]])
    edges = np.flatnonzero(np.diff(active.astype(np.int8)))
    regions = []
    for first, last in zip(edges[::2], edges[1::2], strict=True):
        start, end = frames[int(first)].middle, min(frames[int(last) - 1].middle, seconds)
        if end > start:
            regions.append((float(start), float(end)))
    return regions


def windows(regions: list[tuple[float, float]]) -> np.ndarray:
    """(n, 2) start/end times: one window for a short region, else WINDOW long every ~HOP."""
    out: list[tuple[float, float]] = []
    for start, end in regions:
        length = end - start
        if length < 4 / 3 * WINDOW:
            out.append((start, end))
            continue
        n = int(np.ceil((length - WINDOW) / HOP)) + 1
        out += [(float(s), float(s) + WINDOW) for s in np.linspace(start, end - WINDOW, n)]
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def _clip(audio: torch.Tensor, start: float, end: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A WINDOW-long excerpt holding [start, end], and the frame weights that select it.

    Every excerpt has the same length so windows batch together; a shorter region is pooled over
    its own frames only, the audio around it gives the network context.
    """
    size = int(WINDOW * SAMPLE_RATE)
    total = audio.shape[-1]
    first = min(max(0, int(start * SAMPLE_RATE)), max(0, total - size))
    excerpt = audio[first : first + size]
    if excerpt.shape[-1] < size:
        excerpt = torch.nn.functional.pad(excerpt, (0, size - excerpt.shape[-1]))
    weights = torch.zeros(size // 160)  # 10 ms steps; StatsPool interpolates to its frames
    lo, hi = int((start * SAMPLE_RATE - first) / 160), int((end * SAMPLE_RATE - first) / 160)
    weights[max(lo, 0) : max(hi, lo + 1)] = 1.0
    return excerpt, weights


def embed_windows(
    model: CAMPPlus, audio: torch.Tensor, spans: np.ndarray, hook: Hook
) -> np.ndarray:
    """(n, 192) CAM++ embeddings of the windows; hook reports progress per batch."""
    out = []
    device = next(model.parameters()).device
    size = CUDA_BATCH if device.type == "cuda" else CPU_BATCH
    batches = max(1, -(-len(spans) // size))
    for b in range(batches):
        clips = [_clip(audio, s, e) for s, e in spans[b * size : (b + 1) * size]]
        waves = torch.stack([c[0] for c in clips])[:, None].to(device)
        weights = torch.stack([c[1] for c in clips]).to(device)
        out.append(model(waves, weights=weights).float().cpu().numpy())
        hook("embeddings", None, total=batches, completed=b + 1)
    return np.concatenate(out) if out else np.zeros((0, model.dimension))


def frame_labels(count: SlidingWindowFeature, spans: np.ndarray, labels: np.ndarray) -> Any:
    """(frames, speakers) activity: the nearest window's label, plus a second in overlaps."""
    frames = count.sliding_window
    speakers = int(labels.max()) + 1
    activity = np.zeros((len(count.data), speakers), dtype=np.int8)
    times = frame_times(count)
    centres = spans.mean(axis=1)
    nearest = nearest_window(times, centres)
    talkers = count.data[:, 0]
    speech = np.flatnonzero(talkers > 0)
    activity[speech, labels[nearest[speech]]] = 1
    for frame in np.flatnonzero(talkers >= 2):
        others = np.flatnonzero(labels != labels[nearest[frame]])
        if len(others):
            closest = others[np.abs(centres[others] - times[frame]).argmin()]
            activity[frame, labels[closest]] = 1
    return SlidingWindowFeature(activity, frames)


@dataclass(frozen=True)
class WindowOutput:
    """Turns, and each speaker's voice: shaped like pyannote 4's DiarizeOutput, whose
    speaker_embeddings rows follow speaker_diarization.labels()."""

    speaker_diarization: Annotation
    speaker_embeddings: np.ndarray


def centroids(
    embeddings: np.ndarray, labels: np.ndarray, clustered: np.ndarray, speakers: list[Any]
) -> np.ndarray:
    """(speakers, dim) unit-length mean embedding of each speaker's windows. Only windows that
    were clustered count (not those of overlapped speech or slivers: they hold other voices),
    unless a speaker has none of those."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.maximum(norms, 1e-12)
    out = np.zeros((len(speakers), embeddings.shape[1]), dtype=np.float32)
    for row, speaker in enumerate(speakers):
        mine = labels == int(speaker)
        chosen = mine & clustered if (mine & clustered).any() else mine
        if chosen.any():
            mean = unit[chosen].mean(axis=0)
            out[row] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


class WindowDiarizer:
    """Callable like a pyannote pipeline: ({"waveform", "sample_rate"}, hook, bounds) -> turns;
    `diarize` also gives each speaker's voice (WindowOutput)."""

    def __init__(self, segmenter: SpeakerDiarization, embedding: CAMPPlus) -> None:
        self.segmenter = segmenter
        self.embedding = embedding
        self.device = torch.device("cpu")

    def to(self, device: torch.device) -> WindowDiarizer:
        self.segmenter.to(device)
        self.embedding.to(device)
        self.device = device
        return self

    def _speech(
        self, file: dict[str, Any], hook: Hook
    ) -> tuple[SlidingWindowFeature, SlidingWindowFeature]:
        """segmentation-3.0's (chunks, frames, 3) local tracks and the speaker count per frame."""
        seconds = file["waveform"].shape[-1] / SAMPLE_RATE
        inference = self.segmenter._segmentation
        inference.step = segmentation_step(self.device, seconds) * inference.duration
        segmentations = self.segmenter.get_segmentations(file, hook=hook)
        hook("segmentation", segmentations)
        frames = self.segmenter._segmentation.model.receptive_field
        count: SlidingWindowFeature = self.segmenter.speaker_count(
            segmentations, frames, warm_up=(0.0, 0.0)
        )
        return segmentations, count

    def __call__(
        self,
        file: dict[str, Any],
        hook: Hook | None = None,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> Annotation:
        bounds = SpeakerBounds(num_speakers, min_speakers, max_speakers)
        return self.diarize(file, hook, bounds).speaker_diarization

    def diarize(
        self, file: dict[str, Any], hook: Hook | None, bounds: SpeakerBounds
    ) -> WindowOutput:
        report: Hook = hook or (lambda *args, **kwargs: None)
        seconds = file["waveform"].shape[-1] / SAMPLE_RATE
        segmentations, count = self._speech(file, report)
        spans = windows(speech_regions(count, seconds))
        annotation = Annotation(uri=file.get("uri"))
        if len(spans) == 0:
            return WindowOutput(annotation, np.zeros((0, self.embedding.dimension)))
        embeddings = embed_windows(self.embedding, file["waveform"][0], spans, report)
        report("embeddings", embeddings)
        outside = left_out(count, spans)
        labels = cluster_windows(embeddings, outside, bounds)
        report("clusters", labels)
        labels = smooth_labels(labels, spans)
        activity = relabel_tracks(segmentations, count, spans, labels)
        result = self.segmenter.to_annotation(activity, 0.0, 0.0)
        low, _ = bounds.limits(len(spans))
        if len(result.labels()) < low:  # a track vote erased a speaker the user asked for
            result = self.segmenter.to_annotation(frame_labels(count, spans, labels), 0.0, 0.0)
        result.uri = file.get("uri")
        voices = centroids(embeddings, labels, ~outside, list(result.labels()))
        return WindowOutput(result, voices)
