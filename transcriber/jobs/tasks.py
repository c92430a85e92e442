"""Task state changes: every change bumps seq, is written to SQLite, then published."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import secrets
import shutil
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

from transcriber.jobs.hub import Hub
from transcriber.jobs.webhooks.state import new_delivery
from transcriber.protocol.errors import CODES, ApiError, reference, scrub
from transcriber.protocol.stages import Stage, may_move
from transcriber.store.db import Store
from transcriber.store.live import LiveSegments
from transcriber.store.task import ADMIN_OWNER, Task, task_json
from transcriber.store.transaction import DiskFull

log = logging.getLogger(__name__)


# What a client is told to wait before it tries again when the queue or the uploads are full:
# about one short job. Clients back off further on their own.
RETRY_AFTER_SECONDS = 60


def check_uploads(limit: int, uploading: int) -> None:
    """Uploads in progress each hold a row, a folder and a connection: a JSON-made task whose
    bytes never come, or a PUT trickling a byte at a time, counts until it ends or times out."""
    if uploading >= limit:
        error = ApiError(
            "TOO_MANY_UPLOADS", detail=f"{uploading} uploads in progress; the limit is {limit}"
        )
        error.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        raise error


def _transient(exc: sqlite3.OperationalError) -> bool:
    """A write that may work a moment later: another program holds the database (an operator's
    VACUUM or backup), past the connection's busy timeout."""
    return "locked" in str(exc) or "busy" in str(exc)


class MoveRefused(ApiError):
    """A change of stage that the task's current stage does not allow (MOVES), or that the
    caller did not expect: answered 409 CONFLICT, and nothing changed."""

    def __init__(self, task: Task, new: Stage | None) -> None:
        to = f" -> {new.value}" if new is not None else ""
        super().__init__(
            "CONFLICT",
            f"The task is {task.stage.value} now, so this cannot be done.",
            f"stage {task.stage.value}{to} refused",
        )
        self.stage = task.stage


def new_task_id() -> str:
    return secrets.token_hex(8)


# Finished tasks kept in memory (here and in the hub) for cheap reads; older ones leave once
# nobody watches them and are read from SQLite again when asked for. Unfinished tasks stay.
KEEP_FINISHED = 100


class Tasks:
    """The only path by which a task changes. Keeps the current Task of each unfinished task
    and of the last KEEP_FINISHED finished ones (plus any finished task somebody watches)."""

    def __init__(
        self, store: Store, hub: Hub, files_dir: Path, max_uploads: int | None = None
    ) -> None:
        self.store = store
        # The text runs send while they transcribe (store/live.py).
        self.live = LiveSegments(store.db)
        self.max_uploads = max_uploads
        self.hub = hub
        self.files_dir = files_dir
        self._cache: dict[str, Task] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        # Uploads in progress: when their last byte came (time.monotonic()).
        self.uploads: dict[str, float] = {}
        # Changed while the disk was full: shown, and written by flush() once there is room.
        self._unsaved: set[str] = set()
        # Deletions begun so far: a read that overlapped one reads again (see get()).
        self._deletions = 0
        # Called with the id once a task's row is deleted (DELETE, retention), rolled back or
        # not: what keeps a copy of its data (Transcripts' latest revisions) forgets it.
        self.on_delete: list[Callable[[str], None]] = []
        # Called with each task that has just ended (complete, failed, cancelled), once that is
        # written: its webhook (jobs/webhooks), a watched file's outputs (jobs/watch). A
        # failure is logged, never the task's.
        self.on_end: list[Callable[[Task], Awaitable[None]]] = []

    def work_dir(self, task_id: str) -> Path:
        return self.files_dir / task_id

    def audio_path(self, task: Task) -> Path:
        return self.work_dir(task.id) / task.stored_name

    async def get(self, task_id: str) -> Task | None:
        task = self._cache.get(task_id)
        if task is None:
            while True:
                deletions = self._deletions
                task = await self.store.get(task_id)
                # A deletion that began while the row was read may have come after the read:
                # read again (behind the DELETE), or a deleted task comes back to memory.
                if deletions == self._deletions:
                    break
            # A change made while the row was read (a cancel) is newer than the row.
            task = self._cache.get(task_id) or task
            if task is not None:
                self._cache[task_id] = task
                self.hub.publish(task_json(task))
                self._retire(task)
        return task

    async def require(self, task_id: str) -> Task:
        """The task, or UNKNOWN_TASK for the client that asked."""
        task = await self.get(task_id)
        if task is None:
            raise ApiError("UNKNOWN_TASK", detail=f"task {task_id!r}")
        return task

    def current(self, task_id: str) -> Task | None:
        return self._cache.get(task_id)

    async def create(
        self, filename: str, options: dict[str, Any], suffix: str, owner: str = ADMIN_OWNER
    ) -> Task:
        """A new task in stage uploading, made by `owner` (a key's name, ADMIN_OWNER or
        WATCH_OWNER); TOO_MANY_UPLOADS when --max-uploads are under way (counted and claimed
        with no await between, so racing creates cannot pass it)."""
        if self.max_uploads is not None:
            check_uploads(self.max_uploads, len(self.uploads))
        task_id = new_task_id()
        self.uploads[task_id] = time.monotonic()
        task = Task(
            id=task_id,
            filename=filename,
            stored_name="source" + suffix,
            options=options,
            seq=1,
            owner=owner,
        )
        self.work_dir(task_id).mkdir(parents=True, exist_ok=True)
        try:
            await self.store.save(task)
        except DiskFull as exc:
            self.uploads.pop(task_id, None)
            shutil.rmtree(self.work_dir(task_id), ignore_errors=True)
            raise ApiError("DISK_FULL", detail="the database could not be written") from exc
        self._cache[task_id] = task
        self.hub.publish(task_json(task))
        return task

    async def update(
        self, task_id: str, *, expect: Collection[Stage] | None = None, **changes: Any
    ) -> Task:
        """Apply changes to the current state; the seq is taken before any await.

        A new stage must be a move MOVES allows from the current one, and with `expect` the
        current stage must be one of those: checked and changed with no await between, so
        two callers that both checked the stage earlier cannot both make their move.
        """
        current = self._cache.get(task_id)
        if current is None:
            current = await self.get(task_id)
            if current is None:
                raise KeyError(task_id)
        new = changes.get("stage")
        if (expect is not None and current.stage not in expect) or (
            new is not None and not may_move(current.stage, new)
        ):
            raise MoveRefused(current, new)
        ending = new is not None and new.terminal and not current.stage.terminal
        if ending and current.options.get("callback_url"):
            # Owed in the same write as the end, so that a restart finds it.
            changes["webhook"] = new_delivery()
        task = current.changed(**changes)
        self._cache[task_id] = task
        await self._save(task)
        if task_id in self._cache:  # not deleted while the row was being written
            self.hub.publish(task_json(task))
            self._retire(task)
            if ending:
                await self._ended(task)
        return task

    async def _ended(self, task: Task) -> None:
        for hook in self.on_end:
            try:
                await hook(task)
            except Exception:
                log.exception(
                    "task %s ended; what follows its end is taken up at the next start", task.id
                )

    def _retire(self, task: Task) -> None:
        """Let the oldest finished tasks leave memory once more than KEEP_FINISHED finished."""
        if task.stage != Stage.UPLOADING:
            self.uploads.pop(task.id, None)
        if not task.stage.terminal:
            self._finished.pop(task.id, None)
            return
        self._finished[task.id] = None
        self._finished.move_to_end(task.id)
        excess = len(self._finished) - KEEP_FINISHED
        for task_id in list(itertools.islice(self._finished, max(0, excess))):
            if self.hub.is_watched(task_id) or task_id in self._unsaved:
                continue  # leaves at a later round, once unwatched and written
            del self._finished[task_id]
            self._cache.pop(task_id, None)
            self.hub.release(task_id)

    async def show(self, task_id: str, **changes: Any) -> Task:
        """Publish a change without writing it, while the task's seq floor allows (see Task).

        For what is computed when served (a queue position): once the floor is reached the
        change is written like any other.
        """
        current = self._cache.get(task_id)
        if current is None or current.seq + 1 >= current.seq_floor:
            return await self.update(task_id, **changes)
        task = current.changed(**changes)
        self._cache[task_id] = task
        self.hub.publish(task_json(task))
        return task

    async def record(self, task_id: str, **changes: Any) -> Task:
        """Save changes to fields the snapshot does not show: no new seq, nothing published."""
        current = self._cache.get(task_id) or await self.get(task_id)
        if current is None:
            raise KeyError(task_id)
        task = dataclasses.replace(current, **changes)
        if task_json(task) != task_json(current):
            raise ValueError(f"record() would change the snapshot: {sorted(changes)}")
        self._cache[task_id] = task
        await self._save(task)
        return task

    async def _save(self, task: Task) -> None:
        try:
            await self.store.save(task)
        except (DiskFull, sqlite3.OperationalError) as exc:
            if not isinstance(exc, DiskFull) and not _transient(exc):
                raise
            # The database stays whole; the change is shown now and written by flush().
            log.error("task %s: %s, its change waits to be written", task.id, exc)
            self._unsaved.add(task.id)
        else:
            self._unsaved.discard(task.id)

    async def flush(self) -> None:
        """Write the changes the disk had no room for (called by the watchdog's tick)."""
        for task_id in list(self._unsaved):
            task = self._cache.get(task_id)
            if task is None:
                self._unsaved.discard(task_id)
                continue
            await self._save(task)
            if task_id in self._unsaved:
                return  # still full

    async def fail(
        self,
        task_id: str,
        code: str,
        message: str,
        detail: str,
        ending: Stage = Stage.FAILED,
        expect: Collection[Stage] | None = None,
    ) -> Task:
        """End the task (failed, or cancelled) with an error a client may read: the code's own
        message unless one is given, no server paths, and for INTERNAL only a reference to the
        log line that holds the exception (and its traceback)."""
        message = message or CODES[code][1]
        current = await self.get(task_id)
        stage = current.stage.value if current else None
        if code == "INTERNAL":
            ref = reference()
            log.error("task %s failed [ref %s]: %s", task_id, ref, detail, exc_info=True)
            detail = f"reference {ref} in the server's log"
        message, detail = scrub(message), scrub(detail)
        return await self.update(
            task_id,
            expect=expect,
            stage=ending,
            detail=message,
            error={"code": code, "message": message, "detail": detail, "stage": stage},
        )

    async def delete(self, task_id: str) -> None:
        self._cache.pop(task_id, None)
        self.uploads.pop(task_id, None)
        self._finished.pop(task_id, None)
        self._deletions += 1  # before the DELETE is queued, so a read after it sees it done
        try:
            await self.store.delete(task_id)
        finally:
            for forget in self.on_delete:
                forget(task_id)
        self.hub.forget(task_id)
        shutil.rmtree(self.work_dir(task_id), ignore_errors=True)

    def prime(self, tasks: list[Task]) -> None:
        for task in tasks:
            self._cache[task.id] = task
            self.hub.publish(task_json(task))
            self._retire(task)
