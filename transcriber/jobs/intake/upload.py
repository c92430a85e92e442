"""Streaming an upload to disk in chunks, with a size cap and throttled progress."""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import unquote

from transcriber.jobs.tasks import Tasks
from transcriber.protocol.errors import ApiError
from transcriber.protocol.stages import Stage

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# Stored files keep a suffix only from this list: a name never decides what a file is served
# as, but a suffix like .html on disk invites mistakes by whoever serves the data dir later.
MEDIA_SUFFIXES = frozenset(
    {
        ".wav",
        ".mp3",
        ".m4a",
        ".mp4",
        ".m4v",
        ".aac",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".webm",
        ".mkv",
        ".mka",
        ".mov",
        ".wma",
        ".wmv",
        ".avi",
        ".amr",
        ".3gp",
        ".aif",
        ".aiff",
        ".caf",
        ".mpga",
        ".mpeg",
    }
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UploadCut(Exception):
    """The client's stream broke off before its end (the web layer turns its HTTP library's
    error into this, so that intake takes plain streams)."""


def clean_filename(raw: str | None) -> str:
    """The client's name for display only: no folders, no control characters."""
    raw = raw or ""
    if "%" in raw and raw.isascii():
        # Some clients (aiohttp's among them) percent-encode non-ASCII names.
        raw = unquote(raw)
    name = PureWindowsPath(PurePosixPath(raw).name).name
    name = _CONTROL.sub("", name).strip().lstrip(".")
    return name[:200] or "upload"


def stored_suffix(filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    return suffix if suffix in MEDIA_SUFFIXES else ""


def mb(n: int) -> str:
    return f"{n / 1e6:.0f}" if n >= 10e6 else f"{n / 1e6:.1f}"


class UploadProgress:
    """At most one update per whole percent and two per second, like the workers."""

    def __init__(self, tasks: Tasks, task_id: str, total: int | None) -> None:
        self.tasks, self.task_id, self.total = tasks, task_id, total
        self._pct = -1
        self._time = 0.0

    async def __call__(self, received: int) -> None:
        now = time.monotonic()
        if now - self._time < 0.5:
            return
        pct = min(99, received * 100 // self.total) if self.total else 0
        if self.total and pct == self._pct:
            return
        self._pct, self._time = pct, now
        detail = (
            f"Uploaded {mb(received)} of {mb(self.total)} MB"
            if self.total
            else f"Uploaded {mb(received)} MB"
        )
        await self.tasks.update(self.task_id, stage_progress=pct, detail=detail)


async def receive(
    chunks: AsyncIterator[bytes],
    path: Path,
    tasks: Tasks,
    task_id: str,
    limit: int,
    total: int | None,
    exact: bool,
    digest: Any = None,
) -> int:
    """Write chunks to `path`; on any failure the partial file is removed and the task fails.

    `total` drives the progress percentage; when `exact`, fewer bytes than that is a cut upload.
    """
    progress = UploadProgress(tasks, task_id, total)
    received = 0
    try:
        with path.open("wb") as out:
            async for chunk in chunks:
                received += len(chunk)
                if received > limit:
                    raise ApiError("FILE_TOO_LARGE", detail=f"the limit is {limit} bytes")
                out.write(chunk)
                if digest is not None:
                    digest.update(chunk)
                current = tasks.current(task_id)
                if current is None or current.stage != Stage.UPLOADING:
                    raise ApiError(
                        "CONFLICT",
                        "The upload was cancelled.",
                        "the task left the uploading stage during the upload",
                    )
                tasks.uploads[task_id] = time.monotonic()
                await progress(received)
    except ApiError as exc:
        await _abandon(path, tasks, task_id, exc.code, exc.body["message"], exc.body["detail"])
        raise
    except (UploadCut, ConnectionError, asyncio.IncompleteReadError) as exc:
        cause = str(exc) if isinstance(exc, UploadCut) else f"{type(exc).__name__}: {exc}"
        detail = f"{cause} (received {received} bytes)"
        await _abandon(path, tasks, task_id, "UPLOAD_INCOMPLETE", None, detail)
        raise ApiError("UPLOAD_INCOMPLETE", detail=detail, task_id=task_id) from exc
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        # The partial file goes first: the task's failure then has room to be written.
        detail = f"the disk filled up after {received} bytes"
        await _abandon(path, tasks, task_id, "DISK_FULL", None, detail)
        raise ApiError("DISK_FULL", detail=detail, task_id=task_id) from exc
    if exact and total is not None and received < total:
        detail = f"received {received} of {total} bytes"
        await _abandon(path, tasks, task_id, "UPLOAD_INCOMPLETE", None, detail)
        raise ApiError("UPLOAD_INCOMPLETE", detail=detail, task_id=task_id)
    return received


async def _abandon(
    path: Path, tasks: Tasks, task_id: str, code: str, message: str | None, detail: str
) -> None:
    path.unlink(missing_ok=True)
    current = tasks.current(task_id)
    if current is not None and current.stage == Stage.UPLOADING:
        await tasks.fail(task_id, code, message or "", detail)


async def expire_uploads(tasks: Tasks, timeout: float) -> None:
    """Fail the uploads that received no byte for `timeout` seconds (UPLOAD_INCOMPLETE): a
    two-step upload whose PUT never came, or a client that stopped sending. The partial file
    is removed; bytes that arrive later find the task failed and are refused."""
    now = time.monotonic()
    for task_id, last in list(tasks.uploads.items()):
        if now - last < timeout:
            continue
        tasks.uploads.pop(task_id, None)
        task = tasks.current(task_id)
        if task is None:
            continue
        detail = f"no bytes arrived for {now - last:.0f} s (the upload timeout is {timeout:g} s)"
        log.info("task %s: %s", task_id, detail)
        await _abandon(tasks.audio_path(task), tasks, task_id, "UPLOAD_INCOMPLETE", None, detail)
