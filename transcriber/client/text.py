"""The transcript as the command-line client shows it (submit --text): each segment as it is
decoded, then, once a task is complete, its final transcript with speakers. One line a
segment, "[0:04] text"; with several files each line also names its file, "[talk.wav 0:04]"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from transcriber.protocol.messages import LiveSegment


class Caller(Protocol):
    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The server's JSON answer to a request."""


async def segments_after(client: Caller, task_id: str, after: int) -> list[dict[str, Any]]:
    """A page of the task's segments after `after` (GET .../segments, SegmentsPage)."""
    page = await client.call("GET", f"/api/tasks/{task_id}/segments", params={"after": str(after)})
    segments: list[dict[str, Any]] = page["segments"]
    return segments


def stamp(seconds: float) -> str:
    """A segment's start as a person reads it: 0:04, 12:30, 1:02:03."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LiveText:
    """The provisional segments of the tasks followed (id -> display name), each shown once
    and in order, through `show`."""

    def __init__(self, names: dict[str, str], show: Callable[[str], None]) -> None:
        self.names = names
        self.show = show
        self.last = dict.fromkeys(names, -1)  # the index of the last segment shown

    def add(self, task_id: str, segments: list[dict[str, Any]]) -> None:
        for raw in segments:
            segment = LiveSegment.model_validate(raw)
            # A resumed run sends some segments again: a line once shown stays as it is.
            if segment.final or segment.index <= self.last[task_id]:
                continue
            self.last[task_id] = segment.index
            self.show(self.line(task_id, segment))

    async def print_final(self, client: Caller, complete: list[str]) -> None:
        """The final transcript of each complete task, with speakers, on stdout; in the order
        the files were given."""
        for task_id in self.names:
            if task_id not in complete:
                continue
            index = -1
            while page := await segments_after(client, task_id, index):
                for raw in page:
                    print(self.line(task_id, LiveSegment.model_validate(raw)))
                index = page[-1]["index"]

    def line(self, task_id: str, segment: LiveSegment) -> str:
        where = stamp(segment.start)
        if len(self.names) > 1:
            where = f"{self.names[task_id]} {where}"
        speaker = f"{segment.speaker}: " if segment.speaker else ""
        return f"[{where}] {speaker}{segment.text.strip()}"
