"""Spectral clustering of speaker embeddings, with the speaker count from the eigengap.

The recipe is the one CAM++'s authors use in 3D-Speaker's diarization: a cosine affinity
matrix pruned to each row's nearest neighbours, the unnormalised graph Laplacian, the number of
speakers where the gap between consecutive eigenvalues is largest, then k-means on the first
eigenvectors. Clusters whose centroids stay very similar are merged afterwards: on short
recordings the eigengap tends to split one voice into a clean and an overlapped part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from sklearn.cluster import KMeans

# Chosen on the AMI train/development excerpts (docs/benchmarks.md, "Diarization on real
# speech"): each row keeps its 20% most similar windows, and never fewer than 6.
PRUNE_SHARE = 0.2
MIN_NEIGHBOURS = 6
# A voice with fewer windows than a row keeps cannot be cut off from the others, and 20% of a
# long meeting's windows is more than most of its people have: six AMI voices laid end to end
# and looped to 4-30 minutes (one voice with half the windows, the others 5-20%) gave a single
# speaker. So a row keeps at most LONG_NEIGHBOURS, or LONG_SHARE of the windows past 400 (3%
# is close to 3D-Speaker's default). Up to 60 windows (every 30 s AMI excerpt, at most 40)
# nothing changes. Chosen on loops of the train/development excerpts (docs/benchmarks.md,
# "Long recordings of the same people").
LONG_NEIGHBOURS = 12
LONG_SHARE = 0.03
# Centroids of one voice's clusters: cosine 0.6-0.9; of different voices: at most 0.51 (the
# pyannote sample, two similar men) and at most 0.33 on AMI.
MERGE_COSINE = 0.6
# Clusters of a single window are noise (a cough, a second voice): folded into the nearest.
MIN_WINDOWS = 2
# Without a user's bound, the eigengap is searched among 1..10 speakers.
DEFAULT_MAX_SPEAKERS = 10
# Windows in the spectral graph at most (about 19 minutes of speech at the 0.75 s hop): its
# eigendecomposition grows with the cube of their number, its matrix with the square (an hour
# would need 4,800 x 4,800). Past this an evenly spread sample is clustered and every other
# window joins the nearest centroid.
MAX_CLUSTERED = 1500


@dataclass(frozen=True)
class SpeakerBounds:
    """The user's num_speakers / min_speakers / max_speakers, all optional."""

    num: int | None = None
    low: int | None = None
    high: int | None = None

    def limits(self, count: int) -> tuple[int, int]:
        """(fewest, most) clusters for `count` embeddings; equal when the number is fixed."""
        if self.num is not None:
            return min(self.num, count), min(self.num, count)
        high = min(self.high or DEFAULT_MAX_SPEAKERS, count)
        low = min(self.low or 1, high)
        return max(low, 1), max(high, 1)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = x / np.maximum(norms, 1e-12)
    return out


def _centroids(unit: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(clusters, dim) unit-length mean of each label's rows, labels 0..max."""
    return _unit(np.stack([unit[labels == k].mean(0) for k in range(labels.max() + 1)]))


def neighbours(count: int) -> int:
    """How many nearest windows each row of the affinity keeps, for `count` windows."""
    keep = max(int(np.ceil(PRUNE_SHARE * count)), MIN_NEIGHBOURS)
    keep = min(keep, max(LONG_NEIGHBOURS, int(np.ceil(LONG_SHARE * count))))
    return min(keep, count - 1)


def _affinity(unit: np.ndarray) -> np.ndarray:
    """Cosine similarities, each row pruned to its nearest neighbours, then symmetrised."""
    n = len(unit)
    similarity = unit @ unit.T
    keep = neighbours(n)
    nearest = np.argsort(-similarity, axis=1)[:, : keep + 1]
    rows = np.arange(n)[:, None]
    pruned = np.zeros_like(similarity)
    pruned[rows, nearest] = similarity[rows, nearest]
    out: np.ndarray = np.clip(0.5 * (pruned + pruned.T), 0.0, None)
    np.fill_diagonal(out, 0.0)
    return out


def _spectral(unit: np.ndarray, low: int, high: int) -> np.ndarray:
    affinity = _affinity(unit)
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    eigenvalues, eigenvectors = scipy.linalg.eigh(laplacian)
    if low == high:
        k = low
    else:
        gaps = np.diff(eigenvalues[low - 1 : high + 1])
        k = int(np.argmax(gaps)) + low
    if k <= 1:
        return np.zeros(len(unit), dtype=int)
    labels: np.ndarray = KMeans(k, n_init=10, random_state=0).fit_predict(eigenvectors[:, :k])
    return labels


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Labels 0..k-1 in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    out: np.ndarray = order[inverse]
    return out


def _merge_similar(unit: np.ndarray, labels: np.ndarray, low: int) -> np.ndarray:
    """Merge the two closest clusters while their centroids' cosine is >= MERGE_COSINE."""
    labels = _renumber(labels)
    while labels.max() + 1 > low:
        centroids = _centroids(unit, labels)
        similarity = centroids @ centroids.T
        np.fill_diagonal(similarity, -1.0)
        i, j = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[i, j] < MERGE_COSINE:
            break
        labels = _renumber(np.where(labels == j, i, labels))
    return labels


def cluster_speakers(embeddings: np.ndarray, bounds: SpeakerBounds) -> np.ndarray:
    """One speaker label per embedding row, numbered 0.. in order of first appearance."""
    count = len(embeddings)
    if count == 0:
        return np.zeros(0, dtype=int)
    low, high = bounds.limits(count)
    if high <= 1 or count < 3:
        # Too few windows for a graph; a fixed count still gets one label per window.
        return np.arange(count) % high
    unit = _unit(embeddings)
    labels = _spectral(unit, low, high)
    if low == high:  # the user fixed the count: no merging below it
        return _renumber(labels)
    return _merge_similar(unit, labels, low)


def _merge_small(unit: np.ndarray, labels: np.ndarray, low: int) -> np.ndarray:
    """Fold clusters of fewer than MIN_WINDOWS windows into the nearest centroid's cluster."""
    labels = _renumber(labels)
    while labels.max() + 1 > low:
        sizes = np.bincount(labels)
        small = int(np.argmin(sizes))
        if sizes[small] >= MIN_WINDOWS:
            break
        centroids = _centroids(unit, labels)
        similarity = centroids @ centroids[small]
        similarity[small] = -2.0
        labels = _renumber(np.where(labels == small, int(np.argmax(similarity)), labels))
    return labels


def cluster_windows(
    embeddings: np.ndarray, left_out: np.ndarray, bounds: SpeakerBounds
) -> np.ndarray:
    """Speaker labels for windows; `left_out` marks those kept out of clustering.

    Windows of two people talking at once (or of a sliver of speech) are embeddings of neither:
    they split one voice into extra clusters (AMI dev01: 7 clusters for 2 voices). They are
    clustered without, then take the nearest centroid. Unless the user fixed the count,
    one-window clusters are folded in.
    """
    count = len(embeddings)
    keep = ~left_out
    if keep.sum() < 3:
        keep = np.ones(count, dtype=bool)
    if keep.sum() > MAX_CLUSTERED:
        chosen = np.flatnonzero(keep)
        keep = np.zeros(count, dtype=bool)
        keep[chosen[np.linspace(0, len(chosen) - 1, MAX_CLUSTERED).astype(int)]] = True
    kept = cluster_speakers(embeddings[keep], bounds)
    unit = _unit(embeddings)
    low, _ = bounds.limits(count)
    if bounds.num is None and len(kept):
        kept = _merge_small(unit[keep], kept, low)
    if keep.all() or len(kept) == 0:
        return _renumber(kept)
    centroids = _centroids(unit[keep], kept)
    labels = np.empty(count, dtype=int)
    labels[keep] = kept
    labels[~keep] = (unit[~keep] @ centroids.T).argmax(axis=1)
    return _renumber(labels)
