"""Matching a recording's speakers with the profiles: plain numpy, run in the server.

Each speaker's voice (the unit-length mean of its CAM++ embeddings) is compared with every
profile by cosine: with the seconds-weighted mean of the profile's samples ("mean") or with
its closest sample ("best"). Then one profile per speaker at most and one speaker per profile
(the assignment that maximises the summed similarity, scipy's linear_sum_assignment), kept
only above THRESHOLD. A speaker with less than MIN_SECONDS of speech is never matched: its
mean rests on too few windows. Both numbers and the rule were chosen on the AMI train
excerpts (bench/bench_profiles.py, docs/benchmarks.md "Known voices").
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

Rule = Literal["mean", "best"]

DIMENSION = 192
THRESHOLD = 0.6
MIN_SECONDS = 3.0
RULE: Rule = "mean"


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = x / np.maximum(norms, 1e-12)
    return out


@dataclass(frozen=True)
class Gallery:
    """The profiles in memory: `ids[i]` owns the samples rows where `owner == i` (grouped:
    owner ascends), each unit length, with their seconds of speech."""

    ids: list[str]
    samples: np.ndarray
    owner: np.ndarray
    seconds: np.ndarray
    means: np.ndarray  # (profiles, dim): each profile's samples averaged, by their seconds

    @classmethod
    def build(cls, profiles: list[tuple[str, list[tuple[np.ndarray, float]]]]) -> Gallery:
        """From (profile id, [(embedding, seconds), ...]); profiles without samples are left
        out."""
        kept = [(pid, samples) for pid, samples in profiles if samples]
        rows = [vector for _, samples in kept for vector, _ in samples]
        seconds = [s for _, samples in kept for _, s in samples]
        owner = [i for i, (_, samples) in enumerate(kept) for _ in samples]
        samples = unit_rows(np.array(rows, dtype=np.float32).reshape(-1, DIMENSION))
        weights = np.maximum(np.array(seconds, dtype=np.float32), 1e-3)
        owners = np.array(owner, dtype=np.int64)
        sums = np.zeros((len(kept), DIMENSION), dtype=np.float32)
        np.add.at(sums, owners, samples * weights[:, None])
        return cls([pid for pid, _ in kept], samples, owners, weights, unit_rows(sums))


def similarities(gallery: Gallery, voices: np.ndarray, rule: Rule) -> np.ndarray:
    """(speakers, profiles) cosine of each voice with each profile by the rule."""
    if not gallery.ids:
        return np.zeros((len(voices), 0), dtype=np.float32)
    unit = unit_rows(np.asarray(voices, dtype=np.float32))
    if rule == "mean":
        out: np.ndarray = unit @ gallery.means.T
        return out
    per_sample = unit @ gallery.samples.T
    starts = np.flatnonzero(np.r_[True, np.diff(gallery.owner) != 0])
    best: np.ndarray = np.maximum.reduceat(per_sample, starts, axis=1)
    return best


def assign(
    scores: np.ndarray, allowed: np.ndarray, threshold: float
) -> list[tuple[int, int, float]]:
    """(speaker, profile, similarity) of the best one-to-one assignment, where allowed and at
    or above the threshold."""
    if scores.size == 0:
        return []
    usable = allowed & (scores >= threshold)
    # Pairs that may not match cost more than any that may, so they are picked only when
    # nothing else is left, and then dropped.
    cost = np.where(usable, -scores, 10.0)
    rows, cols = linear_sum_assignment(cost)
    return [
        (int(r), int(c), float(scores[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if usable[r, c]
    ]


@dataclass(frozen=True)
class Match:
    profile_id: str
    similarity: float


def match(
    gallery: Gallery,
    voices: dict[str, tuple[np.ndarray, float]],
    rejected: Set[str] = frozenset(),
    rule: Rule = RULE,
    threshold: float = THRESHOLD,
    min_seconds: float = MIN_SECONDS,
) -> dict[str, Match]:
    """label -> Match for the speakers (label -> (embedding, seconds)) that match a profile;
    profiles in `rejected` are never given."""
    labels = [label for label, (_, seconds) in voices.items() if seconds >= min_seconds]
    if not labels or not gallery.ids:
        return {}
    matrix = np.stack([np.asarray(voices[label][0], dtype=np.float32) for label in labels])
    scores = similarities(gallery, matrix, rule)
    allowed = np.ones(scores.shape, dtype=bool)
    allowed[:, [i for i, pid in enumerate(gallery.ids) if pid in rejected]] = False
    return {
        labels[r]: Match(gallery.ids[c], round(s, 4))
        for r, c, s in assign(scores, allowed, threshold)
    }
