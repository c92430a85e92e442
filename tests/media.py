"""Media fixtures made at test time with Debian's ffmpeg (a missing ffmpeg fails the tests)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

SOURCE = Path(__file__).parent / "data" / "speech_en.wav"


def ffmpeg(*args: str) -> None:
    exe = shutil.which("ffmpeg")
    assert exe, "ffmpeg is required for the media tests (Debian package ffmpeg)"
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def wav_header(data_bytes: int, rate: int = 16000, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", (36 + data_bytes) & 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
        + b"data"
        + struct.pack("<I", data_bytes & 0xFFFFFFFF)
    )


def make_valid(folder: Path) -> dict[str, Path]:
    """Valid oddities, each cut from the 16 kHz speech fixture: name -> file."""
    src = str(SOURCE)
    specs = {
        "mulaw_8k.wav": ["-i", src, "-t", "4", "-ar", "8000", "-c:a", "pcm_mulaw"],
        "float_48k.wav": ["-i", src, "-t", "4", "-ar", "48000", "-c:a", "pcm_f32le"],
        "six_channels.wav": ["-i", src, "-t", "4", "-ac", "6"],
        "speech.mp3": ["-i", src, "-t", "4", "-c:a", "libmp3lame", "-b:a", "64k"],
        "speech.opus": ["-i", src, "-t", "4", "-c:a", "libopus", "-b:a", "32k"],
        "speech.m4a": ["-i", src, "-t", "4", "-c:a", "aac", "-b:a", "64k"],
        "speech.flac": ["-i", src, "-t", "4", "-c:a", "flac"],
        "video_with_audio.mp4": [
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=64x64:d=4",
            "-i",
            src,
            "-t",
            "4",
            "-shortest",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
        ],
    }
    out = {}
    for name, args in specs.items():
        path = folder / name
        ffmpeg(*args, str(path))
        out[name] = path
    return out


def make_bad(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad files: name -> (file, the error code the server must answer with)."""
    files: dict[str, tuple[bytes | None, str]] = {
        "empty.wav": (b"", "UNSUPPORTED_MEDIA"),
        "random.bin": (bytes(range(256)) * 64, "UNSUPPORTED_MEDIA"),
        "notes.wav": (b"Meeting notes, not audio at all.\n" * 50, "UNSUPPORTED_MEDIA"),
        "header_only.wav": (wav_header(0), "DECODE_FAILED"),
        "image.png": (None, "NO_AUDIO_STREAM"),
        "silent_video.mp4": (None, "NO_AUDIO_STREAM"),
    }
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=red:s=32x32:d=1", "-frames:v", "1", str(folder / "image.png")
    )
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=64x64:d=2",
        "-an",
        "-c:v",
        "mpeg4",
        str(folder / "silent_video.mp4"),
    )
    out = {}
    for name, (data, code) in files.items():
        path = folder / name
        if data is not None:
            path.write_bytes(data)
        out[name] = (path, code)
    return out


def lying_mp3(folder: Path, claimed: float, real: float) -> Path:
    """A VBR MP3 whose Xing header says `claimed` seconds, glued to `real - claimed` seconds
    more at 8 kb/s. The header's byte count is set to the whole file's, so FFmpeg takes the
    header's frame count for the duration and does not fall back to the bitrate."""
    head, tail, out = folder / "head.mp3", folder / "tail.mp3", folder / "lying.mp3"
    tone = "sine=frequency=440:duration={:g}"
    mono = ["-ar", "16000", "-ac", "1", "-c:a", "libmp3lame"]
    ffmpeg("-f", "lavfi", "-i", tone.format(claimed), *mono, "-q:a", "9", str(head))
    ffmpeg(
        "-f", "lavfi", "-i", tone.format(real - claimed), *mono, "-b:a", "8k",
        "-write_xing", "0", "-id3v2_version", "0", str(tail),
    )  # fmt: skip
    data = bytearray(head.read_bytes() + tail.read_bytes())
    xing = data.index(b"Xing")
    assert int.from_bytes(data[xing + 4 : xing + 8], "big") & 3 == 3  # frames and bytes fields
    data[xing + 12 : xing + 16] = len(data).to_bytes(4, "big")
    out.write_bytes(data)
    return out
