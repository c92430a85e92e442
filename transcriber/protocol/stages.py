"""The stages a task goes through: one enum, spelled once for server, worker, client and page."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    UPLOADING = "uploading"
    QUEUED = "queued"
    TRANSCRIBING = "transcribing"
    ALIGNING = "aligning"
    DIARIZING = "diarizing"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Stage.COMPLETE, Stage.FAILED, Stage.CANCELLED)

    @property
    def running(self) -> bool:
        return self in WORK_STAGES


WORK_STAGES = (Stage.TRANSCRIBING, Stage.ALIGNING, Stage.DIARIZING)


def stage_weights(options: dict[str, Any]) -> dict[Stage, tuple[int, int]]:
    """Share of overall progress per work stage, as (start, width) in percent."""
    if options.get("diarize", True):
        return {
            Stage.TRANSCRIBING: (0, 70),
            Stage.ALIGNING: (70, 10),
            Stage.DIARIZING: (80, 20),
        }
    return {Stage.TRANSCRIBING: (0, 85), Stage.ALIGNING: (85, 15)}


def pipeline_stages(options: dict[str, Any]) -> list[Stage]:
    return list(stage_weights(options))
