"""A task as stored: the Task dataclass and the one snapshot serializer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from transcriber.protocol.options import DEFAULT_OPTIONS
from transcriber.protocol.stages import Stage

# The owner of tasks made with the server's token (or on a server without credentials), and of
# tasks made from files dropped in a watched folder. No key may take either name.
ADMIN_OWNER = "admin"
WATCH_OWNER = "watch"


def iso(moment: datetime) -> str:
    """A UTC time as stored and shown: milliseconds, with a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(UTC))


@dataclass
class Task:
    id: str
    filename: str
    stored_name: str
    options: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIONS))
    seq: int = 0
    attempt: int = 0
    stage: Stage = Stage.UPLOADING
    progress: int = 0
    stage_progress: int = 0
    detail: str = ""
    duration: float | None = None
    size: int = 0
    language: str | None = None
    error: dict[str, Any] | None = None
    done_stages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # Runs cut short by a server restart; after max_attempts the task fails INTERRUPTED.
    interruptions: int = 0
    # Hash of an OpenAI-style request (file and options), so a client's retry joins the task.
    request_key: str | None = None
    # A seq that changes shown only in memory (queue positions) may reach; a reload starts above
    # it, so no seq is ever published twice.
    seq_floor: int = 0
    # What the probe found the file to be (audio/..., video/...); None: served as bytes only.
    media_type: str | None = None
    # Segments of text the run has sent so far (provisional), or the final transcript's count.
    segments_count: int = 0
    # Pieces of the audio (worker/pipeline/transcribe.py) whose segments are all stored: a run
    # resumed inside the transcribing stage starts after them.
    pieces_done: int = 0
    # Who made it: the name of the key it was made with; ADMIN_OWNER with the server's token
    # or on a server without credentials; WATCH_OWNER for files dropped in a watched folder.
    owner: str = ADMIN_OWNER
    # The delivery of its callback_url webhook (jobs/webhooks): id, state, attempts, last
    # answer, next try; None when it has none.
    webhook: dict[str, Any] | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    def changed(self, **changes: Any) -> Task:
        """A copy with the changes applied, seq bumped and updated_at set."""
        return dataclasses.replace(self, **changes, seq=self.seq + 1, updated_at=now_iso())


def task_json(task: Task) -> dict[str, Any]:
    """The one snapshot shape, for HTTP and WebSocket alike."""
    base = f"/api/tasks/{task.id}"
    return {
        "id": task.id,
        "seq": task.seq,
        "attempt": task.attempt,
        "stage": task.stage.value,
        "progress": task.progress,
        "stage_progress": task.stage_progress,
        "detail": task.detail,
        "filename": task.filename,
        "owner": task.owner,
        "size": task.size,
        "duration": task.duration,
        "language": task.language,
        "options": task.options,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "error": task.error,
        "segments_count": task.segments_count,
        "webhook": task.webhook,
        "links": {
            "self": base,
            "transcript": f"{base}/transcript",
            "audio": f"{base}/audio",
            "rttm": f"{base}/diarization.rttm",
            "segments": f"{base}/segments",
        },
    }
