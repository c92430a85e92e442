"""The job contract: what the coordinator hands a worker (Job), what it gets back (JobResult),
and the files both sides agree on in a task's folder (stage outputs, cancel flags).

Imported by jobs/, node/ and web/ as well as by the worker, so it imports nothing heavy: no
numpy, torch or faster-whisper, nothing of aiohttp or aiosqlite.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transcriber.protocol.stages import WORK_STAGES

# The work stages in pipeline order, as the protocol names them.
STAGES = tuple(stage.value for stage in WORK_STAGES)


@dataclass(frozen=True)
class Job:
    task_id: str
    attempt: int
    audio_path: Path
    work_dir: Path
    stages: tuple[str, ...]
    options: dict[str, Any]
    pipeline: str = "real"
    model: str = "base"
    device: str = "auto"
    models_dir: Path = Path(".")
    aligner: str = "whisper"
    align_model: str | None = None
    diarization: str = "bundled"
    hf_token: str | None = None
    # The server's default hotwords (--hotwords-file), added to the task's own.
    hotwords: str | None = None
    # --max-audio-seconds, enforced again while decoding: a container may understate its length.
    max_audio_seconds: float | None = None
    # --max-models: the Whisper models this worker keeps loaded between jobs.
    max_models: int = 2
    plumbing_stage_seconds: float = 0.3
    plumbing_hang: str | None = None
    # Where an earlier run of the transcribing stage stopped, from the segments the server
    # stored: {"segments": [...], "pieces": N, "language": "en"}; None starts it afresh.
    resume: dict[str, Any] | None = None
    # --live-text: each segment is sent as it is decoded.
    live_text: bool = True


@dataclass
class JobResult:
    done_stages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    language: str | None = None
    # Segments in the final output: what the live text's clients replace theirs with.
    segments: int = 0


def cancel_flag(work_dir: Path, attempt: int) -> Path:
    return work_dir / f"cancel-{attempt}"


# The key of the diarizing stage's output that holds each speaker's voice ({label:
# {"embedding": [...], "seconds": s}}); the server moves it to the database (jobs/profiles).
VOICES_KEY = "voices"


def stage_output(work_dir: Path, stage: str) -> Path:
    return work_dir / f"{stage}.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Never a half file that looks finished: written beside it, then renamed over it. A
    failed write (a full disk) gives back what the half file took."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, ensure_ascii=False).encode())
