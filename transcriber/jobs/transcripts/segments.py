"""A task's text segment by segment, for clients that follow it as it grows: the provisional
segments a run stores while it transcribes (store/live.py), or, once the task is complete, the
final ones (the latest revision: speakers by name, aligned words), each marked `final`."""

from __future__ import annotations

from typing import Any

from transcriber.jobs.transcripts.revisions import Transcripts
from transcriber.protocol.stages import Stage
from transcriber.store.live import PAGE
from transcriber.store.task import Task


async def segments_after(
    transcripts: Transcripts, task: Task, after: int, limit: int = PAGE
) -> tuple[bool, list[dict[str, Any]]]:
    """(final, the segments numbered above `after`, at most `limit`)."""
    if task.stage != Stage.COMPLETE:
        return False, await transcripts.tasks.live.after(task.id, after, limit)
    _, revision = await transcripts.latest(task.id)
    names = revision.data.get("speaker_names") or {}
    chosen = revision.data["segments"][after + 1 : after + 1 + limit]
    return True, [_final(after + 1 + n, seg, names) for n, seg in enumerate(chosen)]


def _final(index: int, segment: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    label = segment.get("speaker")
    return {
        "index": index,
        "start": segment["start"],
        "end": segment["end"],
        "text": segment["text"],
        "speaker": names.get(label, label) if label else None,
        "words": [
            {
                "word": w["word"],
                "start": w["start"],
                "end": w["end"],
                "probability": w.get("probability"),
            }
            for w in segment.get("words", ())
        ],
        "final": True,
    }
