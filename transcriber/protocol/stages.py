"""The stages a task goes through: one enum, spelled once for server, worker, client and page.

The page reads them from static/stages.js, generated from this enum (a test keeps it in step):
    python -m transcriber.protocol.stages --js > static/stages.js
"""

from __future__ import annotations

import json
import sys
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

    @property
    def label(self) -> str:
        """The name a person reads: "Transcribing", "Complete"."""
        return self.value.capitalize()


WORK_STAGES = (Stage.TRANSCRIBING, Stage.ALIGNING, Stage.DIARIZING)

_ENDS = (Stage.FAILED, Stage.CANCELLED)
# Every move a task's stage may make; jobs/tasks.py checks each change against it, with no
# await between the check and the change. A work stage goes forward (a stage may be skipped:
# its output was saved, or it is not asked for), back to the queue (a lost node resumes), or
# ends. A finished task only goes back to the queue: a retry, or a re-run of diarization.
MOVES: dict[Stage, frozenset[Stage]] = {
    Stage.UPLOADING: frozenset({Stage.UPLOADING, Stage.QUEUED, *_ENDS}),
    Stage.QUEUED: frozenset({Stage.QUEUED, *WORK_STAGES, *_ENDS}),
    **{
        stage: frozenset({*WORK_STAGES[index:], Stage.QUEUED, Stage.COMPLETE, *_ENDS})
        for index, stage in enumerate(WORK_STAGES)
    },
    Stage.COMPLETE: frozenset({Stage.QUEUED}),
    Stage.FAILED: frozenset({Stage.QUEUED}),
    Stage.CANCELLED: frozenset({Stage.QUEUED}),
}


def may_move(old: Stage, new: Stage) -> bool:
    return new in MOVES[old]


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


def javascript() -> str:
    """static/stages.js: the enum as an ES module for the page."""
    values = {stage.name: stage.value for stage in Stage}
    names = {stage.value: stage.label for stage in Stage}
    terminal = [stage.value for stage in Stage if stage.terminal]
    return "\n".join(
        [
            "// Generated from transcriber/protocol/stages.py; do not edit. Regenerate with",
            "//   python -m transcriber.protocol.stages --js > static/stages.js",
            "",
            "// The stage values of the protocol, in pipeline order.",
            f"export const STAGE = Object.freeze({json.dumps(values, indent=2)});",
            "",
            "// Stage value -> the name a person reads.",
            f"export const STAGE_NAMES = Object.freeze({json.dumps(names, indent=2)});",
            "",
            f"export const TERMINAL = new Set({json.dumps(terminal)});",
            "",
        ]
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--js"]:
        sys.exit("usage: python -m transcriber.protocol.stages --js > static/stages.js")
    sys.stdout.write(javascript())
