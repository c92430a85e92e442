"""The real pipeline in a worker process: models load once per process and stay cached."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from transcriber.protocol.stages import Stage
from transcriber.worker.job import VOICES_KEY
from transcriber.worker.pipeline.audio import load_audio
from transcriber.worker.pipeline.cache import ModelCache
from transcriber.worker.pipeline.types import (
    LiveText,
    PipelineError,
    ProgressFn,
    Resume,
    Transcript,
    clock,
)

log = logging.getLogger(__name__)

# Held for the life of the worker process: loading costs seconds, a task may take minutes.
# Tasks pick their Whisper model, so only the --max-models most recently used stay; the
# diarizer and the CTC aligner are the server's own, one of each.
_whisper = ModelCache()
_diarizers: dict[tuple[str, str], Any] = {}
_ctc_aligners: dict[tuple[str, str], Any] = {}


def whisper_model(name: str, device: str, models_dir: Path, most: int) -> Any:
    from transcriber.worker.pipeline.models import load_model

    return _whisper.get((name, device), lambda: load_model(name, device, models_dir), most)


# Importing the diarizer's libraries is most of its first load (7 s on a busy 2-core CPU, one
# call): imported one by one, each is a sub-step of the detail line.
_DIARIZER_IMPORTS = ("torch", "lightning", "pyannote.audio", "pyannote.audio.pipelines")


def diarizer(
    spec: str, device: str, models_dir: Path, token: str | None, progress: ProgressFn
) -> Any:
    key = (spec, device)
    if key not in _diarizers:
        for module in _DIARIZER_IMPORTS:
            progress(-1, f"Loading speaker models - {module}")
            importlib.import_module(module)
        progress(-1, "Loading speaker models")
        from transcriber.worker.pipeline.diarize import load_diarizer

        _diarizers[key] = load_diarizer(spec, models_dir, device, token)
    return _diarizers[key]


def ctc_aligner(source: str, device: str, models_dir: Path) -> Any:
    key = (source, device)
    if key not in _ctc_aligners:
        from transcriber.worker.pipeline.ctc import CtcAligner

        resolved = device
        if device == "auto":
            import torch

            resolved = "cuda" if torch.cuda.is_available() else "cpu"
        _ctc_aligners[key] = CtcAligner(source, models_dir, resolved)
    return _ctc_aligners[key]


class Context:
    def __init__(
        self,
        audio_path: Path,
        options: dict[str, Any],
        model: str,
        device: str,
        models_dir: Path,
        diarization: str,
        hf_token: str | None,
        aligner: str = "whisper",
        align_model: str | None = None,
        hotwords: str | None = None,
        max_audio_seconds: float | None = None,
        max_models: int = 2,
        live: LiveText | None = None,
        resume: Resume | None = None,
    ) -> None:
        self.audio_path = audio_path
        self.options = options
        self.model = model
        self.device = device
        self.models_dir = models_dir
        self.diarization = diarization
        self.hf_token = hf_token
        self.aligner = aligner
        self.align_model = align_model
        self.hotwords = hotwords
        self.max_audio_seconds = max_audio_seconds
        self.max_models = max_models
        self.live = live
        self.resume = resume
        self._audio: np.ndarray | None = None

    def audio(self, progress: ProgressFn) -> np.ndarray:
        """The decoded audio, read once per job; reading an hour takes a while, so it reports."""
        if self._audio is None:

            def reading(done: float, total: float) -> None:
                progress(-1, f"Reading audio - {clock(done)} of {clock(total)}")

            progress(-1, "Reading audio")
            self._audio = load_audio(self.audio_path, reading, self.max_audio_seconds)
        return self._audio

    def starting(self, stage: Stage) -> str:
        """The first sub-line of a stage: what the worker does before it can count steps."""
        if stage == Stage.TRANSCRIBING:
            if (self.model, self.device) not in _whisper:
                return f"Loading model {self.model}"
            return "Reading audio"
        if stage == Stage.DIARIZING and (self.diarization, self.device) not in _diarizers:
            return "Loading speaker models"
        return "Starting"

    def run(
        self, stage: Stage, previous: Transcript | None, progress: ProgressFn
    ) -> dict[str, Any]:
        if stage == Stage.TRANSCRIBING:
            return self._transcribe(progress).to_dict()
        if previous is None:
            raise PipelineError("INTERNAL", "", f"{stage} needs the transcript")
        if stage == Stage.ALIGNING:
            return self._align(previous, progress).to_dict()
        return self._diarize(previous, progress)

    def _transcribe(self, progress: ProgressFn) -> Transcript:
        from transcriber.worker.pipeline.transcribe import transcribe

        model = whisper_model(self.model, self.device, self.models_dir, self.max_models)
        audio = self.audio(progress)
        words = [w for w in (self.options.get("hotwords"), self.hotwords) if w]
        options = self.options | {"hotwords": " ".join(words) or None}
        return transcribe(
            model, audio, options, progress, self.model, live=self.live, resume=self.resume
        )

    def _align(self, transcript: Transcript, progress: ProgressFn) -> Transcript:
        if not self.options.get("word_timestamps", True):
            progress(100, "Word timings not requested")
            return transcript
        if self.aligner == "ctc" and self.align_model:
            ctc = ctc_aligner(self.align_model, self.device, self.models_dir)
            result: Transcript = ctc.align(self.audio(progress), transcript, progress)
            return result
        from transcriber.worker.pipeline.align import align

        model = whisper_model(self.model, self.device, self.models_dir, self.max_models)
        return align(model, self.audio(progress), transcript, progress)

    def _diarize(self, transcript: Transcript, progress: ProgressFn) -> dict[str, Any]:
        # The diarizer first: its load imports torch and pyannote.audio step by step, which
        # importing the diarize module here would do in one silent call.
        pipeline = diarizer(self.diarization, self.device, self.models_dir, self.hf_token, progress)
        from transcriber.worker.pipeline.diarize import assign_speakers, diarize_voices

        turns, voices = diarize_voices(pipeline, self.audio(progress), self.options, progress)
        data = assign_speakers(transcript, turns).to_dict()
        data["turns"] = [{"start": t.start, "end": t.end, "speaker": t.speaker} for t in turns]
        # The server takes these out before the output becomes a transcript (VOICES_KEY in
        # worker/job.py): they never reach an export.
        data[VOICES_KEY] = {
            label: {"embedding": [round(x, 6) for x in v.embedding], "seconds": v.seconds}
            for label, v in voices.items()
        }
        return data
