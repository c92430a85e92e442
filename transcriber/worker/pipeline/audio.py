"""Reading audio: probe the container before decoding, then decode to 16 kHz mono float32."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from transcriber.worker.pipeline.types import PipelineError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


# Container (PyAV's format name) -> media type, audio-only and with video. Only these are ever
# served back as media; anything else goes out as an attachment of unknown bytes.
_MEDIA_TYPES: dict[str, tuple[str, str]] = {
    "wav": ("audio/wav", "audio/wav"),
    "mp3": ("audio/mpeg", "audio/mpeg"),
    "flac": ("audio/flac", "audio/flac"),
    "ogg": ("audio/ogg", "video/ogg"),
    "aac": ("audio/aac", "audio/aac"),
    "mov,mp4,m4a,3gp,3g2,mj2": ("audio/mp4", "video/mp4"),
    "matroska,webm": ("audio/webm", "video/webm"),
    "asf": ("audio/x-ms-wma", "video/x-ms-asf"),
    "avi": ("audio/x-wav", "video/x-msvideo"),
    "aiff": ("audio/aiff", "audio/aiff"),
    "amr": ("audio/amr", "audio/amr"),
    "caf": ("audio/x-caf", "audio/x-caf"),
}


@dataclass(frozen=True)
class Probed:
    duration: float
    media_type: str | None  # None: not a container we serve back as media


def probe(path: Path) -> float:
    """Duration in seconds from the container, without decoding the audio."""
    return inspect(path).duration


def inspect(path: Path) -> Probed:
    """Duration and media type from the container, without decoding the audio.

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
        media_type = _media_type(container)
        try:
            _first_frame(container, stream)
        except (av.error.FFmpegError, StopIteration) as exc:
            raise PipelineError("DECODE_FAILED", "", _describe(exc)) from exc
    if duration is None or duration <= 0:
        raise PipelineError("DECODE_FAILED", "", "the audio stream has no length")
    return Probed(duration, media_type)


def _media_type(container: av.container.InputContainer) -> str | None:
    kinds = _MEDIA_TYPES.get(container.format.name)
    if kinds is None:
        return None
    # A cover picture is a video stream too; it does not make the file a video.
    video = any(
        not s.disposition & av.stream.Disposition.attached_pic for s in container.streams.video
    )
    return kinds[1] if video else kinds[0]


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
