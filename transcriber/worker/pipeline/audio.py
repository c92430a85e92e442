"""Reading audio: probe the container before decoding, then decode to 16 kHz mono float32."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np

from transcriber.worker.pipeline.types import PipelineError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def probe(path: Path) -> float:
    """Duration in seconds from the container, without decoding the audio.

    Raises PipelineError UNSUPPORTED_MEDIA (not a media file), NO_AUDIO_STREAM, or
    DECODE_FAILED (an audio stream whose length cannot be told or whose first packet fails).
    """
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise PipelineError("UNSUPPORTED_MEDIA", "", _describe(exc)) from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise PipelineError("NO_AUDIO_STREAM", "", "the file has no audio stream")
        stream = streams[0]
        duration = _duration(container, stream)
        try:
            _first_frame(container, stream)
        except (av.error.FFmpegError, StopIteration) as exc:
            raise PipelineError("DECODE_FAILED", "", _describe(exc)) from exc
    if duration is None or duration <= 0:
        raise PipelineError("DECODE_FAILED", "", "the audio stream has no length")
    return duration


def _duration(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return None


def _first_frame(container: av.container.InputContainer, stream: av.AudioStream) -> None:
    for _frame in container.decode(stream):
        return
    raise StopIteration("no audio frames")


def load_audio(path: Path) -> np.ndarray:
    """The whole file as 16 kHz mono float32, decoded with PyAV as faster-whisper does."""
    from faster_whisper import decode_audio

    try:
        audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, ValueError) as exc:
        raise PipelineError("DECODE_FAILED", "", _describe(exc)) from exc
    return np.asarray(audio, dtype=np.float32)


def _describe(exc: BaseException) -> str:
    """Exception type and text, without the server's file paths."""
    text = getattr(exc, "strerror", None) or str(exc) or "no audio frames"
    return f"{type(exc).__name__}: {text}"
