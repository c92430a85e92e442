"""A revision as a file in one of the formats (transcriber.formats): for downloads and for
the outputs written beside a watched folder's files."""

from __future__ import annotations

from transcriber.formats import render
from transcriber.jobs.transcripts.edits import named
from transcriber.store.task import Task
from transcriber.store.transcripts import Revision


def export(fmt: str, task: Task, revision: Revision) -> bytes:
    """The file. Slow for an hour's transcript (a copy and a render): call it in a thread, or
    it holds up every other request on the event loop."""
    data = {"speaker_names": {}, "speaker_profiles": {}} | named(revision.data)
    data |= {"revision": revision.revision, "source": revision.source}
    return render(fmt, task, data)
