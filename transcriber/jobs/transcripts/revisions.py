"""Revisions of a task's transcript: the model's output as revision 0, each edit the next one.

A run's output becomes a revision the first time anything asks for the transcript (or
searches) after the run completed: revision 0 for the first run, and for a re-run of
diarization the next revision, with the text edits carried over (jobs/edits.py). Edits of one
task are serialized by a lock; If-Match with the revision's ETag guards against a stale tab.
An edit stores only what it changed (and a full copy every FULL_EVERY revisions) and updates
only the search rows it changed (store/transcripts.py): its writes do not grow with the
transcript. Nor does what it reads: the latest revision of the transcripts used last stays in
memory (Transcripts' `_latest`, KEEP_LATEST tasks and KEEP_SEGMENTS segments at most), so an
edit does not read and parse the last full copy again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from transcriber.jobs.tasks import Tasks
from transcriber.jobs.transcripts.edits import carry_text_edits
from transcriber.jobs.transcripts.results import final_output
from transcriber.protocol.errors import ApiError
from transcriber.protocol.stages import Stage
from transcriber.store.task import Task, now_iso
from transcriber.store.transcripts import Revision, TranscriptStore
from transcriber.worker.job import VOICES_KEY

log = logging.getLogger(__name__)

Edit = Callable[[dict[str, Any]], dict[str, Any]]
# Given a run's output as it becomes a revision: (task, the speakers' voices or None, the
# revision's data) -> the data to save (jobs/profiles names the speakers it recognises).
OnOutput = Callable[[Task, object, dict[str, Any]], Awaitable[dict[str, Any]]]
# Tasks a search's catch-up takes from the database at once.
SYNC_BATCH = 50
# The latest revisions kept in memory: at most this many tasks' and this many segments in all
# (parsed, a segment with its word timings takes about 5 KiB: 2,700 of a 3-hour transcript
# 14.5 MB, so about 50 MB in all). The one used last stays even when it alone is more: an edit
# of it holds it in memory anyway.
KEEP_LATEST = 16
KEEP_SEGMENTS = 10_000


def etag(revision: Revision) -> str:
    return f'"{revision.task_id}-{revision.revision}"'


def segment_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows the search index holds: speakers by the names they were given."""
    names = data.get("speaker_names") or {}
    return [_row(index, segment, names) for index, segment in enumerate(data["segments"])]


def _row(index: int, segment: dict[str, Any], names: dict[str, str]) -> tuple[Any, ...]:
    label = segment.get("speaker")
    speaker = names.get(label, label) if label else None
    return (index, segment["start"], segment["end"], speaker, segment["text"])


def changed_rows(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The search rows an edit changed: its segment's, or each segment of a renamed label.
    An edit copies the segments it changes (jobs/edits.py), so the others are skipped by
    identity without building their rows."""
    before, after = old.get("speaker_names") or {}, new.get("speaker_names") or {}
    renamed = {
        label for label in before.keys() | after.keys() if before.get(label) != after.get(label)
    }
    rows = []
    for index, (was, segment) in enumerate(zip(old["segments"], new["segments"], strict=True)):
        if segment is not was or segment.get("speaker") in renamed:
            row = _row(index, segment, after)
            if row != _row(index, was, before):
                rows.append(row)
    return rows


class Transcripts:
    """The one writer of revisions (under each task's lock), and so the keeper of the latest
    revision of the transcripts used last: filled by every read and write under the lock,
    replaced by each new revision (an edit, a re-run's output), dropped when a write fails or
    the task is deleted (Tasks.on_delete: DELETE and retention). A revision read or written
    across a deletion is not kept (the deletion may be its task's). Nothing changes a
    revision's data once made (edits copy what they change), so readers share it."""

    def __init__(
        self,
        tasks: Tasks,
        store: TranscriptStore,
        keep_latest: int = KEEP_LATEST,
        keep_segments: int = KEEP_SEGMENTS,
    ) -> None:
        self.tasks = tasks
        self.store = store
        # One lock per task while anyone holds or awaits it: (lock, holders and waiters).
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._latest: OrderedDict[str, Revision] = OrderedDict()  # least recently used first
        self._kept_segments = 0
        self._keep_latest, self._keep_segments = keep_latest, keep_segments
        self._deletions = 0  # tasks deleted so far
        self.on_output: OnOutput | None = None
        tasks.on_delete.append(self.forget)

    def forget(self, task_id: str) -> None:
        """The task is deleted: its revision leaves memory, and one read or saved meanwhile
        is not kept."""
        self._deletions += 1
        self._drop(task_id)

    def _drop(self, task_id: str) -> None:
        gone = self._latest.pop(task_id, None)
        if gone is not None:
            self._kept_segments -= len(gone.data["segments"])

    def _keep(self, revision: Revision, deletions: int) -> None:
        """`revision` is its task's latest, read or saved under the task's lock since
        `deletions` was counted."""
        self._drop(revision.task_id)
        if deletions != self._deletions:
            return
        self._latest[revision.task_id] = revision
        self._kept_segments += len(revision.data["segments"])
        while len(self._latest) > 1 and (
            len(self._latest) > self._keep_latest or self._kept_segments > self._keep_segments
        ):
            self._drop(next(iter(self._latest)))

    async def _read_latest(self, task_id: str) -> Revision | None:
        """The latest revision, from memory or else the database (then kept); under the lock."""
        kept = self._latest.get(task_id)
        if kept is not None:
            self._latest.move_to_end(task_id)
            return kept
        deletions = self._deletions
        found = await self.store.latest(task_id)
        if found is not None:
            self._keep(found, deletions)
        return found

    async def _saved(self, revision: Revision, save: Awaitable[bool]) -> None:
        """Await the store's write of `revision`; keep it as the latest once saved. A failed
        write (or one cancelled, which may still commit) leaves the database to say."""
        deletions = self._deletions
        try:
            saved = await save
        except BaseException:
            self._drop(revision.task_id)
            raise
        if saved:
            self._keep(revision, deletions)
        else:
            self._drop(revision.task_id)  # the task is gone

    @asynccontextmanager
    async def lock(self, task_id: str) -> AsyncIterator[None]:
        """Serialize the changes of one task's transcript; the lock leaves with its last user."""
        lock, users = self._locks.setdefault(task_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[task_id]

    async def latest(self, task_id: str) -> tuple[Task, Revision]:
        """The task and its latest revision (NOT_READY while there is none)."""
        task = await self.tasks.require(task_id)
        latest = self._kept(task)
        if latest is None:  # not in memory, or a run's output to save first: under the lock
            async with self.lock(task_id):
                latest = await self.imported(task)
        if latest is None:
            final_output(self.tasks, task)  # raises NOT_READY with the stage
            raise ApiError("NOT_READY", detail="no transcript saved")
        return task, latest

    async def revision(self, task_id: str, number: int) -> tuple[Task, Revision]:
        task, latest = await self.latest(task_id)
        if number == latest.revision:
            return task, latest
        found = await self.store.get(task_id, number) if number >= 0 else None
        if found is None:
            raise ApiError(
                "BAD_REQUEST",
                f"There is no revision {number}.",
                f"revisions: 0 to {latest.revision}",
            )
        return task, found

    async def index(self, task: Task) -> None:
        """Save a run's output as a revision the moment it completes: searchable at once."""
        async with self.lock(task.id):
            await self.imported(task)

    async def sync(self) -> None:
        """Make every completed run's output a revision (before a search), SYNC_BATCH tasks
        at a time: after an upgrade there may be thousands waiting."""
        after = ""
        while True:
            batch = await self.store.unimported(after, SYNC_BATCH)
            for task_id in batch:
                task = await self.tasks.get(task_id)
                if task is not None:
                    async with self.lock(task_id):
                        await self.imported(task)
            if len(batch) < SYNC_BATCH:
                return
            after = batch[-1]

    def _kept(self, task: Task) -> Revision | None:
        """The latest revision from memory when nothing is left to save first (the readers'
        path: no lock, no await)."""
        kept = self._latest.get(task.id)
        if kept is None or not _has_run_output(task, kept):
            return None
        self._latest.move_to_end(task.id)
        return kept

    async def imported(self, task: Task) -> Revision | None:
        """The latest revision, after saving the output of a run that completed since."""
        latest = await self._read_latest(task.id)
        if task.stage != Stage.COMPLETE or (latest is not None and _has_run_output(task, latest)):
            return latest
        try:
            output = final_output(self.tasks, task, keep_voices=True)
        except FileNotFoundError:
            log.warning("task %s is complete but its output is gone", task.id)
            return latest
        voices = output.pop(VOICES_KEY, None)
        data = output if latest is None else carry_text_edits(latest.data, output)
        if self.on_output is not None:
            data = await self.on_output(task, voices, data)
        if latest is None:
            new = Revision(task.id, 0, task.attempt, "model", now_iso(), data)
        else:
            new = Revision(task.id, latest.revision + 1, task.attempt, "rediarize", now_iso(), data)
        await self._saved(new, self.store.add(new, segment_rows(new.data)))
        return new

    async def change(self, task_id: str, if_match: str | None, edit: Edit) -> Revision:
        """Apply an edit to the latest revision and save the result as the next one; the
        task's update (seq + 1) tells open pages to fetch it."""
        async with self.lock(task_id):
            task = await self.tasks.require(task_id)
            if task.stage != Stage.COMPLETE:
                raise ApiError(
                    "CONFLICT",
                    f"The task is {task.stage.value}; a transcript is edited once it is complete.",
                    f"stage={task.stage.value}",
                )
            latest = await self.imported(task)
            if latest is None:
                raise ApiError("NOT_READY", detail="no transcript saved")
            check_if_match(if_match, latest)
            data = edit(latest.data)
            new = Revision(task_id, latest.revision + 1, latest.attempt, "edit", now_iso(), data)
            rows = changed_rows(latest.data, data)
            await self._saved(new, self.store.add_edit(new, latest.data, rows))
            try:
                await self.tasks.update(task_id, detail=f"Revision {new.revision} saved")
            except KeyError:
                log.info("task %s was deleted while it was edited", task_id)
        return new


def check_if_match(header: str | None, latest: Revision) -> None:
    """If-Match: the edit applies only to the revision the client saw (RFC 9110 13.1.1)."""
    if header is None:
        return
    tags = [tag.strip() for tag in header.split(",")]
    if "*" in tags or etag(latest) in tags:
        return
    raise ApiError(
        "PRECONDITION_FAILED",
        "The transcript was changed elsewhere; reload it to see the latest revision.",
        f"If-Match {header[:100]}; current ETag {etag(latest)}",
    )


def _has_run_output(task: Task, latest: Revision) -> bool:
    """Whether `latest` already holds the output of the task's last run (or the task has no
    finished run to save): nothing waits to become a revision."""
    return task.stage != Stage.COMPLETE or latest.attempt >= task.attempt
