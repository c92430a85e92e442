"""Each speaker's voice from a diarization: the embedding the pipeline gives it (the
centroid of its windows, windows.py) made unit length, and its seconds of speech. The server
keeps one per speaker with the task and matches them with voice profiles (jobs/profiles)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from pyannote.core import Annotation

from transcriber.worker.pipeline.types import Turn, Voice


def speaker_names(annotation: Annotation) -> dict[str, str]:
    """Each label of the annotation -> SPEAKER_00, 01, ... in order of first speech."""
    names: dict[str, str] = {}
    for _, _, label in sorted(
        (seg.start, seg.end, str(label)) for seg, _, label in annotation.itertracks(True)
    ):
        names.setdefault(label, f"SPEAKER_{len(names):02d}")
    return names


def voices_of(output: Any, annotation: Annotation, turns: list[Turn]) -> dict[str, Voice]:
    """Each speaker's voice: the output's embedding of it (unit length) and its seconds of
    speech in the turns. Pipelines that give no embeddings give no voices."""
    embeddings = getattr(output, "speaker_embeddings", None)
    if embeddings is None:
        return {}
    names = speaker_names(annotation)
    seconds: dict[str, float] = defaultdict(float)
    for turn in turns:
        seconds[turn.speaker] += turn.end - turn.start
    voices = {}
    for row, label in enumerate(annotation.labels()):
        vector = np.asarray(embeddings[row], dtype=np.float64)
        norm = float(np.linalg.norm(vector))
        if str(label) in names and np.isfinite(vector).all() and norm > 0:
            name = names[str(label)]
            voices[name] = Voice((vector / norm).tolist(), round(seconds[name], 3))
    return voices
