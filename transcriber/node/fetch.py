"""A node without the coordinator's data folder: audio in, each stage's output back, over HTTP.

The coordinator's internal routes (web/nodes.py) take the node token as a bearer token. The
audio is streamed to the node's cache and a cut download goes on where it stopped (Range).
Stage outputs the coordinator already has are fetched first, so a resumed task starts after
its last finished stage here too; each new one is sent back as its stage ends.
"""

from __future__ import annotations

import http.client
import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from transcriber.node.settings import NodeSettings
from transcriber.worker.job import Job, stage_output

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
TIMEOUT = 60.0


def _request(settings: NodeSettings, path: str, **kw: Any) -> urllib.request.Request:
    if not settings.coordinator_url:
        raise RuntimeError("a node with --audio http needs --coordinator-url")
    url = settings.coordinator_url.rstrip("/") + path
    request = urllib.request.Request(url, **kw)
    request.add_header("Authorization", f"Bearer {settings.node_token or ''}")
    return request


def fetch_inputs(settings: NodeSettings, job: Job, work_dir: Path, audio: Path) -> None:
    """The audio (resumed if partly here) and the stage outputs the coordinator holds."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob("*.json"):
        stale.unlink()  # the coordinator's files are the truth: a retry may have reset them
    if not audio.exists():
        _download_audio(settings, job.task_id, audio)
    for stage in job.stages:
        try:
            with urllib.request.urlopen(
                _request(settings, f"/internal/nodes/tasks/{job.task_id}/stages/{stage}"),
                timeout=TIMEOUT,
            ) as answer:
                stage_output(work_dir, stage).write_bytes(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise


def _download_audio(settings: NodeSettings, task_id: str, audio: Path) -> None:
    partial = audio.with_name(audio.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    request = _request(settings, f"/internal/nodes/tasks/{task_id}/audio")
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        answer = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code != 416:  # the part file is whole already
            raise
    else:
        with answer, partial.open("ab" if answer.status == 206 else "wb") as out:
            shutil.copyfileobj(answer, out, CHUNK)
            # A sized read stops quietly where the connection did (http.client): without
            # this check a cut download would pass for the whole recording.
            if answer.length:
                raise http.client.IncompleteRead(b"", answer.length)
    partial.replace(audio)
    log.info("task %s: audio fetched (%d bytes)", task_id, audio.stat().st_size)


def upload_stage(settings: NodeSettings, job: Job, stage: str) -> None:
    """Send a finished stage's output; the coordinator refuses one from a stale attempt."""
    body = stage_output(job.work_dir, stage).read_bytes()
    request = _request(
        settings,
        f"/internal/nodes/tasks/{job.task_id}/stages/{stage}?attempt={job.attempt}",
        data=body,
        method="PUT",
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=TIMEOUT):
        pass
