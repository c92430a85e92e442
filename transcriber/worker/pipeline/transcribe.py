"""Transcribing stage: decode 16 kHz audio into segments with a loaded faster-whisper model.

Finding and loading the model is models.py's job, as faster-whisper keeps download_model
apart from WhisperModel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel

from transcriber.worker.pipeline.types import PipelineError, ProgressFn, Segment, Transcript

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# Batches of 30 s windows only pay off where the accelerator has room to run them in parallel;
# on the CPU the plain path gives better text at a similar speed (bench/bench_align.py).
GPU_BATCH_SIZE = 16


def transcribe(
    model: WhisperModel,
    audio: np.ndarray,
    options: dict[str, Any],
    progress: ProgressFn,
    model_name: str,
) -> Transcript:
    """Segments without word timings (the Aligning stage adds those).

    Progress follows the lazy segment generator: each segment's end over the duration.
    """
    duration = len(audio) / SAMPLE_RATE
    kwargs = _decode_options(model, options)
    if model.model.device == "cuda":
        pipeline = BatchedInferencePipeline(model)
        found, info = pipeline.transcribe(audio, batch_size=GPU_BATCH_SIZE, **kwargs)
    else:
        found, info = model.transcribe(audio, **kwargs)
    log.info("Language %s (p=%.2f)", info.language, info.language_probability)
    progress(0, f"Language: {info.language}")
    segments = list(_collect(found, duration, progress))
    progress(100, f"{len(segments)} segments")
    return Transcript(info.language, duration, model_name, segments)


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
        # Silero VAD (shipped inside faster-whisper) skips silence: without it Whisper
        # invents text ("You", "Thank you.") over long quiet stretches.
        "vad_filter": True,
    }


def _collect(found: Iterable[Any], duration: float, progress: ProgressFn) -> Iterator[Segment]:
    generator = iter(found)
    try:
        reached = 0.0
        for index, seg in enumerate(generator):
            end = min(float(seg.end), duration)
            reached = max(reached, end)
            yield Segment(index, round(float(seg.start), 3), round(end, 3), seg.text.strip())
            percent = 100 * reached / duration if duration > 0 else 100.0
            progress(percent, f"Segment {index + 1} - {clock(reached)} of {clock(duration)}")
    finally:
        # A cancel leaves the decoder mid-file: close it so its state is freed now.
        close = getattr(generator, "close", None)
        if close is not None:
            close()


def clock(seconds: float) -> str:
    """4:10, or 1:02:03 past an hour."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
