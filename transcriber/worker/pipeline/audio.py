"""Reading audio: probe the container before decoding, then decode to 16 kHz mono float32."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
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


def load_audio(
    path: Path,
    progress: Callable[[float, float], None] | None = None,
    most_seconds: float | None = None,
) -> np.ndarray:
    """The whole file as 16 kHz mono float32: one copy of it, however long it is.

    Decodes with PyAV and resamples to 16-bit as faster-whisper's `decode_audio` does (same
    samples), but writes each resampled frame straight into a float32 array sized from the
    container's duration, where `decode_audio` collects the int16 bytes and converts them at
    the end (two to three copies at its peak: bench/bench_longfile.py). `progress` gets the
    seconds decoded so far and the container's duration, about every `_REPORT_SECONDS` of audio.

    The upload was checked against the duration its container claims, and a header may lie
    (a VBR MP3 whose Xing frame counts only its first part): decoding stops, with
    PipelineError AUDIO_TOO_LONG, once it passes `most_seconds` (plus `_SLACK` seconds for
    codec padding), so the array never holds more than the limit's worth of samples.
    """
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise PipelineError("DECODE_FAILED", "", "the file has no audio stream")
            stream = container.streams.audio[0]
            expected = _duration(container, stream) or 0.0
            # A header may claim any length: past _MOST_SECONDS (or the limit) the array grows
            # as it fills, never past the limit.
            claimed = int(min(expected, _MOST_SECONDS) * SAMPLE_RATE * 1.01) + SAMPLE_RATE
            most = None if most_seconds is None else int((most_seconds + _SLACK) * SAMPLE_RATE)
            buffer = _Buffer(claimed, most)
            _decode(container, stream, buffer, lambda done: _report(progress, done, expected))
    except (av.error.FFmpegError, ValueError) as exc:
        raise PipelineError("DECODE_FAILED", "", _describe(exc)) from exc
    except _Full as exc:
        detail = (
            f"decoding stopped at {exc.seconds:.0f} s, past the limit of {most_seconds:.0f} s;"
            f" the container claimed {expected:.0f} s"
        )
        raise PipelineError("AUDIO_TOO_LONG", "", detail) from exc
    if buffer.size == 0:
        raise PipelineError("DECODE_FAILED", "", "no audio frames")
    return buffer.audio()


def _decode(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    buffer: _Buffer,
    report: Callable[[int], None],
) -> None:
    """Resample every frame into `buffer`; `report` gets the samples held, every
    `_REPORT_SECONDS` of audio."""
    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    reported = 0
    for frame in _frames(container, stream):
        for out in resampler.resample(frame):
            buffer.add(out.to_ndarray()[0])
        if buffer.size >= reported + _REPORT_SAMPLES:
            reported = buffer.size
            report(buffer.size)
    for out in resampler.resample(None):
        buffer.add(out.to_ndarray()[0])


def _report(progress: Callable[[float, float], None] | None, done: int, expected: float) -> None:
    if progress is not None:
        progress(done / SAMPLE_RATE, expected)


_REPORT_SECONDS = 60
_MOST_SECONDS = 12 * 3600
# Decoded lengths differ from the claimed by codec padding (an MP3's first and last frames).
_SLACK = 1.0
_REPORT_SAMPLES = _REPORT_SECONDS * SAMPLE_RATE


def _frames(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[av.AudioFrame]:
    """The stream's frames, skipping the ones FFmpeg cannot decode (as faster-whisper does)."""
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue
        frame.pts = None  # a resampler checks timestamps; broken ones are not our concern
        yield frame


class _Full(Exception):
    """More samples than the buffer may hold: the audio is longer than the limit."""

    def __init__(self, samples: int) -> None:
        super().__init__(f"{samples} samples")
        self.seconds = samples / SAMPLE_RATE


class _Buffer:
    """A float32 array filled from int16 chunks; grows (a copy) only past the expected size,
    and never past `most` samples (raises _Full instead; None: no bound)."""

    def __init__(self, expected: int, most: int | None = None) -> None:
        self._most = most
        # np.empty touches no page: the memory counts only as the samples arrive.
        self._data = np.empty(self._bounded(max(expected, SAMPLE_RATE)), dtype=np.float32)
        self.size = 0

    def _bounded(self, samples: int) -> int:
        return samples if self._most is None else min(samples, self._most)

    def add(self, chunk: np.ndarray) -> None:
        end = self.size + len(chunk)
        if self._most is not None and end > self._most:
            raise _Full(end)
        if end > len(self._data):
            # The container understated its length: grow by half again (rare; a copy).
            grown = np.empty(self._bounded(max(end, len(self._data) * 3 // 2)), dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        np.divide(chunk, 32768.0, out=self._data[self.size : end], casting="unsafe")
        self.size = end

    def audio(self) -> np.ndarray:
        # A view: the unused tail was never touched, so it holds no memory.
        return self._data[: self.size]


def _describe(exc: BaseException) -> str:
    """Exception type and text, without the server's file paths."""
    text = getattr(exc, "strerror", None) or str(exc) or "no audio frames"
    return f"{type(exc).__name__}: {text}"
