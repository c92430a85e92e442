"""From window labels to frames: segmentation-3.0's local speaker tracks decide the boundaries.

Window labels alone change speaker only between window centres (every 0.75 s) and a window that
straddles a change of turn often takes the wrong voice; on pyannote's sample (two similar voices,
fast turns) that cost 15% DER. segmentation-3.0 sees those changes: within each 10 s chunk it
tracks up to three local speakers. A local track whose frames mostly (>= TRACK_PURITY) carry one
window label is given that label as a whole, so its boundaries are the model's. A mixed track is
kept frame by frame with the nearest window's label: on AMI segmentation-3.0 often holds two
voices in one track for a whole chunk (dev00), and voting there would erase one of them. The
chunks' clustered tracks are then aggregated and each frame keeps as many speakers as
segmentation counts there, as pyannote's own reconstruction does.
"""

from __future__ import annotations

import numpy as np
from pyannote.audio.pipelines.utils import SpeakerDiarizationMixin
from pyannote.core import SlidingWindowFeature

# Chosen on the AMI train/development excerpts with pyannote's sample and voices.wav
# (docs/benchmarks.md, "Round 2"): 0.55-0.62 let mixed AMI tracks vote (dev01 30% -> 44%),
# 0.7 leaves the sample at 7.6%.
TRACK_PURITY = 0.65
# Windows more than this share of overlapped frames are left out of clustering.
MAX_OVERLAP_SHARE = 0.2
# So are windows over speech regions shorter than this (seconds): CAM++ on 0.0-0.1 s of speech
# is like no voice, and such windows made AMI dev01's third "speaker" (docs, "Round 3").
MIN_SPAN = 0.2
# Windows further apart than this (start to start) are not neighbours for smoothing.
_NEIGHBOUR_GAP = 0.8


def frame_times(count: SlidingWindowFeature) -> np.ndarray:
    """The centre time of each of the count's frames."""
    frames = count.sliding_window
    times: np.ndarray = frames.start + frames.duration / 2 + frames.step * np.arange(len(count))
    return times


def overlap_share(count: SlidingWindowFeature, spans: np.ndarray) -> np.ndarray:
    """For each window, the share of its frames where segmentation counts two or more speakers.

    Prefix sums over the frames: linear in the recording, not frames x windows.
    """
    times = frame_times(count)
    overlapped = np.concatenate([[0], np.cumsum(count.data[:, 0] >= 2)])
    first = np.searchsorted(times, spans[:, 0], side="left")
    last = np.searchsorted(times, spans[:, 1], side="left")
    frames = last - first
    share = (overlapped[last] - overlapped[first]) / np.maximum(frames, 1)
    out: np.ndarray = np.where(frames > 0, share, 0.0)
    return out


def left_out(count: SlidingWindowFeature, spans: np.ndarray) -> np.ndarray:
    """Windows not clustered (mostly overlapped, or too short); they take the nearest centroid."""
    short = spans[:, 1] - spans[:, 0] < MIN_SPAN
    out: np.ndarray = (overlap_share(count, spans) > MAX_OVERLAP_SHARE) | short
    return out


def smooth_labels(labels: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """A lone window between two neighbours of one other speaker takes their label.

    A speaker's last window is never relabelled, so the number of speakers stays the same.
    """
    out = labels.copy()
    starts = spans[:, 0]
    for i in range(1, len(labels) - 1):
        close = max(starts[i] - starts[i - 1], starts[i + 1] - starts[i]) <= _NEIGHBOUR_GAP
        lone = labels[i - 1] == labels[i + 1] != labels[i]
        if close and lone and np.count_nonzero(out == labels[i]) > 1:
            out[i] = labels[i - 1]
    return out


def nearest_window(times: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the window whose centre is nearest each time; `centres` ascend (windows come in
    time order). A search, not a times x windows matrix: an hour has 200,000 frames."""
    right = np.clip(np.searchsorted(centres, times), 1, len(centres) - 1)
    left = right - 1
    if len(centres) == 1:
        return np.zeros(len(times), dtype=int)
    nearer_left = np.abs(times - centres[left]) <= np.abs(centres[right] - times)
    out: np.ndarray = np.where(nearer_left, left, right)
    return out


def _nearest_labels(times: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out: np.ndarray = labels[nearest_window(times, centres)]
    return out


def _chunk_scores(active: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """(frames, speakers) scores of one chunk from its local tracks and the window labels."""
    scores = np.zeros_like(onehot)
    for track in active.T:
        on = track > 0
        if not on.any():
            continue
        share = onehot[on].mean(axis=0)
        if share.max() >= TRACK_PURITY:
            vote = np.zeros_like(share)
            vote[share.argmax()] = 1.0
            scores[on] = np.maximum(scores[on], vote)
        else:
            scores[on] = np.maximum(scores[on], onehot[on])
    return scores


def relabel_tracks(
    segmentations: SlidingWindowFeature,
    count: SlidingWindowFeature,
    spans: np.ndarray,
    labels: np.ndarray,
) -> SlidingWindowFeature:
    """(frames, speakers) activity from the chunks' local tracks labelled by the windows."""
    speakers = int(labels.max()) + 1
    chunks = segmentations.sliding_window
    frames = count.sliding_window
    chunk_data = segmentations.data
    offsets = frames.duration / 2 + frames.step * np.arange(chunk_data.shape[1])
    centres = spans.mean(axis=1)
    identity = np.eye(speakers)
    scores = np.zeros((len(chunk_data), chunk_data.shape[1], speakers))
    for c, active in enumerate(chunk_data):
        onehot = identity[_nearest_labels(chunks[c].start + offsets, centres, labels)]
        scores[c] = _chunk_scores(active, onehot)
    capped = SlidingWindowFeature(np.minimum(count.data, speakers).astype(np.int8), frames)
    return SpeakerDiarizationMixin.to_diarization(SlidingWindowFeature(scores, chunks), capped)
