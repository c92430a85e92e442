"""The watch of --watch folders: a file is taken once it has stopped growing for
--watch-settle seconds; one that is not audio (the uploads' probe) is logged once and left.

Each folder is watched with watchfiles (inotify) and scanned whole when the watch starts, so
files dropped while the server was down are found. A folder that is removed is waited for
(through a watch of its parent) and watched again once it is back. A file is taken again only
when its size or modification time changed since it was seen (store/watched.py), or when its
outputs are missing; its task is owned by `watch` and its outputs are written when it ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import suppress
from pathlib import Path
from typing import Any

from watchfiles import Change, awatch

from transcriber.config import Config
from transcriber.jobs.intake.admission import admit
from transcriber.jobs.intake.ingest import ingest
from transcriber.jobs.intake.upload import CHUNK, stored_suffix
from transcriber.jobs.tasks import Tasks
from transcriber.jobs.transcripts.exports import export
from transcriber.jobs.transcripts.revisions import Transcripts
from transcriber.jobs.watch.outputs import (
    ERROR_SUFFIX,
    error_text,
    never_source,
    output_path,
    outputs_present,
    write_atomic,
)
from transcriber.protocol.errors import ApiError
from transcriber.protocol.stages import Stage
from transcriber.store.task import WATCH_OWNER, Task
from transcriber.store.watched import Seen, WatchedStore
from transcriber.worker.pipeline.audio import inspect
from transcriber.worker.pipeline.types import PipelineError

log = logging.getLogger(__name__)

Enqueue = Callable[..., Awaitable[Task]]
# The probe's verdicts that mean "not audio at all": ignored, not failed.
NOT_AUDIO = frozenset({"UNSUPPORTED_MEDIA", "NO_AUDIO_STREAM"})
# watchfiles groups the events of this many milliseconds; quiet periods end its wait this often.
DEBOUNCE_MS = 300
QUIET_MS = 5000


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            yield chunk


def _stat(path: Path) -> os.stat_result | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found if path.is_file() else None


class Watcher:
    def __init__(
        self,
        tasks: Tasks,
        transcripts: Transcripts,
        config: Config,
        enqueue: Enqueue,
        waiting: Callable[[], int],
    ) -> None:
        """`enqueue` queues a task (Runner.enqueue); `waiting` says how many wait (for
        --max-queue)."""
        self.tasks, self.transcripts, self.enqueue = tasks, transcripts, enqueue
        self.waiting = waiting
        self._waiting: set[Path] = set()
        self.config = config
        self.folders = tuple(folder.resolve() for folder in config.watch)
        self.out_dir = config.watch_out
        self.formats = config.watch_formats
        self.options = config.watch_task_options()
        self.settle = config.watch_settle
        self.store = WatchedStore(tasks.store.db)
        self._stop = asyncio.Event()
        self._settling: dict[Path, asyncio.Task[None]] = {}
        self._work: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._taking = asyncio.Lock()
        tasks.on_end.append(self._ended)

    async def start(self) -> None:
        """Write the outputs of files whose task ended while the server was down (before the
        scan, which must find a file whose copy a stop cut as new), then watch."""
        for seen in await self.store.taken():
            if seen.task_id is not None:
                await self._finish(seen.task_id)
        self._loops = [asyncio.create_task(self._watch(folder)) for folder in self.folders]

    async def stop(self) -> None:
        self._stop.set()  # ends watchfiles' wait within a step, not at its next timeout
        running = [*self._loops, *self._settling.values(), *self._work]
        for task in running:
            task.cancel()
        for task in running:
            with suppress(asyncio.CancelledError):
                await task

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    # -- watching ----------------------------------------------------------------------------

    async def _watch(self, folder: Path) -> None:
        while not self._stop.is_set():
            try:
                await self._until_gone(folder)
                if self._stop.is_set():
                    return
                log.warning("watched folder %s is gone; waiting for it to come back", folder)
                await self._until_back(folder)
                log.info("watched folder %s is back", folder)
            except Exception:
                log.exception("watched folder %s: watching again shortly", folder)
                await asyncio.sleep(self.settle)

    async def _until_gone(self, folder: Path) -> None:
        for path in sorted(folder.iterdir()):
            self._changed(path)
        async for changes in self._changes(folder):
            for change, name in changes:
                if change != Change.deleted and Path(name).parent == folder:
                    self._changed(Path(name))
            if not folder.is_dir():
                return

    async def _until_back(self, folder: Path) -> None:
        while not folder.is_dir():
            if not folder.parent.is_dir():
                await asyncio.sleep(QUIET_MS / 1000)
                continue
            async for _ in self._changes(folder.parent):
                if folder.is_dir():
                    return

    def _changes(self, folder: Path) -> AsyncIterator[set[tuple[Change, str]]]:
        return awatch(
            folder,
            stop_event=self._stop,
            recursive=False,
            debounce=DEBOUNCE_MS,
            rust_timeout=QUIET_MS,
            yield_on_timeout=True,
        )

    def _changed(self, path: Path) -> None:
        """Wait for the file to stop growing (again), then take it."""
        if never_source(path):
            return
        earlier = self._settling.pop(path, None)
        if earlier is not None:
            earlier.cancel()
        self._settling[path] = asyncio.create_task(self._settled(path))

    async def _settled(self, path: Path) -> None:
        before = _stat(path)
        while True:
            await asyncio.sleep(self.settle)
            now = _stat(path)
            if now is None or before is None:
                return  # gone, or not a plain file
            if (now.st_size, now.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
                break
            before = now
        if self._settling.get(path) is asyncio.current_task():
            del self._settling[path]  # from here on a new event waits for the take
        self._spawn(self._take(path, now))

    # -- taking a file -----------------------------------------------------------------------

    async def _take(self, path: Path, found: os.stat_result) -> None:
        async with self._taking:
            seen = Seen(str(path), found.st_size, found.st_mtime_ns, "taken")
            if await self._done_before(path, seen):
                return
            try:
                await asyncio.to_thread(inspect, path)
            except PipelineError as exc:
                if exc.code in NOT_AUDIO:
                    log.info("watched file %s is not audio (%s); ignored", path.name, exc.code)
                    await self.store.put(dataclasses.replace(seen, state="ignored"))
                    return
            await self._submit(path, seen)

    async def _done_before(self, path: Path, seen: Seen) -> bool:
        known = await self.store.get(seen.path)
        if known is not None and (known.size, known.mtime_ns) == (seen.size, seen.mtime_ns):
            return True
        if outputs_present(path, self.out_dir, self.formats):
            await self.store.put(dataclasses.replace(seen, state="done"))
            return True
        return False

    async def _submit(self, path: Path, seen: Seen) -> None:
        try:
            # The limits of uploads hold here too; the file waits for room in the folder.
            admit(self.config, self.waiting(), len(self.tasks.uploads))
            task = await self.tasks.create(
                path.name, dict(self.options), stored_suffix(path.name), owner=WATCH_OWNER
            )
        except ApiError as exc:
            if path not in self._waiting:
                log.warning("watched file %s waits: %s", path.name, exc.body["message"])
            self._waiting.add(path)
            self._changed(path)  # looked at again once --watch-settle has passed
            return
        self._waiting.discard(path)
        await self.store.put(dataclasses.replace(seen, task_id=task.id))
        log.info("watched file %s is task %s", path.name, task.id)
        try:
            task = await ingest(self.tasks, self.config, task, _file_chunks(path), seen.size, True)
        except ApiError:
            return  # the task failed; its end writes the error file
        with suppress(ApiError):  # cancelled meanwhile
            await self.enqueue(task.id, (Stage.UPLOADING,))

    # -- when its task ends ------------------------------------------------------------------

    async def _ended(self, task: Task) -> None:
        if task.owner == WATCH_OWNER:
            self._spawn(self._finish(task.id))

    async def _finish(self, task_id: str) -> None:
        """Write the outputs (or the error file) of a watched file whose task ended."""
        seen = await self.store.of_task(task_id)
        task = await self.tasks.get(task_id)
        if seen is None or seen.state != "taken" or task is None or not task.stage.terminal:
            return
        source = Path(seen.path)
        if task.error is not None and task.error["code"] == "UPLOAD_INCOMPLETE":
            # Its copy into the data folder was cut (by a stop): the file itself is whole.
            await self.store.forget(seen.path)
            return
        error_file = output_path(source, self.out_dir, ERROR_SUFFIX)
        try:
            if task.stage == Stage.COMPLETE:
                await self._write_outputs(task, source)
                await asyncio.to_thread(error_file.unlink, missing_ok=True)  # an earlier run's
                state = "done"
            else:
                await asyncio.to_thread(write_atomic, error_file, error_text(task.error))
                state = "failed"
        except (OSError, ApiError):
            log.exception("watched file %s: outputs not written (again at the next start)", source)
            return
        await self.store.put(dataclasses.replace(seen, state=state))
        log.info("watched file %s: %s", source.name, state)

    async def _write_outputs(self, task: Task, source: Path) -> None:
        task, revision = await self.transcripts.latest(task.id)
        for fmt in self.formats:
            body = await asyncio.to_thread(export, fmt, task, revision)
            path = output_path(source, self.out_dir, fmt)
            await asyncio.to_thread(write_atomic, path, body)
