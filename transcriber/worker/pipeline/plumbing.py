"""The plumbing pipeline: walks the stages with no models, for fast tests of the server.

Never the default: the server uses it only when configured with pipeline="plumbing".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transcriber.worker.pipeline.audio import probe
from transcriber.worker.pipeline.types import ProgressFn, Segment, Transcript

STEPS = 10


class Context:
    def __init__(self, audio_path: Path, stage_seconds: float) -> None:
        self.audio_path = audio_path
        self.stage_seconds = stage_seconds

    def starting(self, stage: str) -> str:
        return "Starting"

    def run(self, stage: str, previous: Transcript | None, progress: ProgressFn) -> dict[str, Any]:
        duration = probe(self.audio_path)
        for step in range(1, STEPS + 1):
            time.sleep(self.stage_seconds / STEPS)
            progress(step * 100 / STEPS, f"Plumbing step {step}/{STEPS}")
        if previous is None:
            previous = _transcript(duration)
        data = previous.to_dict()
        if stage == "aligning":
            for seg in data["segments"]:
                seg["words"] = [
                    {
                        "word": "plumbing",
                        "start": seg["start"],
                        "end": seg["end"],
                        "probability": 1.0,
                        "speaker": None,
                    }
                ]
        if stage == "diarizing":
            for seg in data["segments"]:
                seg["speaker"] = "SPEAKER_00"
                for word in seg["words"]:
                    word["speaker"] = "SPEAKER_00"
            data["turns"] = [{"start": 0.0, "end": duration, "speaker": "SPEAKER_00"}]
        return data


def _transcript(duration: float) -> Transcript:
    count = max(1, min(5, int(duration // 2)))
    step = duration / count
    segments = [
        Segment(i, round(i * step, 3), round((i + 1) * step, 3), f"Plumbing segment {i + 1}.")
        for i in range(count)
    ]
    return Transcript("en", duration, "plumbing", segments)
