"""Task options and their defaults."""

from __future__ import annotations

from typing import Any

DEFAULT_OPTIONS: dict[str, Any] = {
    "language": None,
    "model": None,
    "task": "transcribe",
    "diarize": True,
    "num_speakers": None,
    "min_speakers": None,
    "max_speakers": None,
    "word_timestamps": True,
    "initial_prompt": None,
}
