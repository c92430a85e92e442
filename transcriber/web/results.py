"""Handlers for finished work: transcript downloads, RTTM, and the original audio."""

from __future__ import annotations

import asyncio

from aiohttp import web

from transcriber.formats import FORMATS, render
from transcriber.formats.text import to_rttm
from transcriber.jobs.transcripts.edits import named
from transcriber.jobs.transcripts.revisions import etag
from transcriber.jobs.transcripts.segments import segments_after
from transcriber.protocol.errors import ApiError
from transcriber.protocol.stages import Stage
from transcriber.store.task import Task
from transcriber.store.transcripts import Revision
from transcriber.web.keys import HUB, TASKS, TRANSCRIPTS
from transcriber.web.params import MAX_WAIT, RevisionQuery, SegmentsQuery, TranscriptQuery
from transcriber.web.parsing import query


async def segments(request: web.Request) -> web.Response:
    """The text after `after`, segment by segment: provisional while the task runs, final once
    complete; with `wait`, a long-poll that answers as soon as a segment comes."""
    asked = query(request, SegmentsQuery)
    tasks, transcripts, hub = request.app[TASKS], request.app[TRANSCRIPTS], request.app[HUB]
    task = await tasks.require(request.match_info["task_id"])
    final, rows = await segments_after(transcripts, task, asked.after)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(asked.wait or 0, MAX_WAIT)
    # Each change of the task may be a segment stored: look again after each, until one is.
    while not rows and not task.stage.terminal and (left := deadline - loop.time()) > 0:
        await hub.wait(task.id, task.seq, left)
        task = tasks.current(task.id) or task
        final, rows = await segments_after(transcripts, task, asked.after)
    page = {
        "task_id": task.id,
        "stage": task.stage.value,
        "seq": task.seq,
        "final": final,
        "segments_count": task.segments_count,
        "segments": rows,
    }
    return web.json_response(page)


async def transcript(request: web.Request) -> web.Response:
    """The latest revision (or ?revision=N) in any format, speakers by their names."""
    asked = query(request, TranscriptQuery)
    fmt = asked.format
    task, revision = await _revision(request, asked.revision)
    body = await asyncio.to_thread(_export, fmt, task, revision)
    kind = FORMATS[fmt]
    charset = None if kind.binary else "utf-8"
    response = web.Response(body=body, content_type=kind.media_type, charset=charset)
    response.headers["ETag"] = etag(revision)
    response.headers["Cache-Control"] = "no-cache"
    if asked.download is not None:
        stem = task.filename.rsplit(".", 1)[0] or "transcript"
        response.headers["Content-Disposition"] = _attachment(f"{stem}.{fmt}")
    return response


def _export(fmt: str, task: Task, revision: Revision) -> bytes:
    """The file, made in a thread: copying and rendering an hour's transcript takes long
    enough to hold up every other request if it ran on the event loop."""
    data = {"speaker_names": {}, "speaker_profiles": {}} | named(revision.data)
    data |= {"revision": revision.revision, "source": revision.source}
    return render(fmt, task, data)


async def _revision(request: web.Request, number: int | None) -> tuple[Task, Revision]:
    transcripts = request.app[TRANSCRIPTS]
    task_id = request.match_info["task_id"]
    if number is None:
        return await transcripts.latest(task_id)
    return await transcripts.revision(task_id, number)


async def rttm(request: web.Request) -> web.Response:
    task, revision = await _revision(request, query(request, RevisionQuery).revision)
    if "turns" not in revision.data:
        raise ApiError("NOT_READY", "This task ran without diarization.", "diarize=false")
    data = await asyncio.to_thread(named, revision.data)
    return web.Response(
        text=to_rttm(data["turns"], task.id), content_type="text/plain", charset="utf-8"
    )


async def audio(request: web.Request) -> web.StreamResponse:
    """The original file, only ever as the media type the probe found it to be.

    A failed upload's bytes (an HTML or SVG file, say) go out as an attachment of unknown
    type, so a browser never renders them on this server's origin.
    """
    task = await request.app[TASKS].require(request.match_info["task_id"])
    path = request.app[TASKS].audio_path(task)
    if task.stage == Stage.UPLOADING or not path.exists():
        raise ApiError("NOT_READY", "The audio has not arrived yet.")
    media = task.media_type
    headers = {
        "Content-Type": media or "application/octet-stream",
        "Content-Disposition": _attachment(task.filename, inline=media is not None),
        "X-Content-Type-Options": "nosniff",
    }
    # FileResponse answers Range requests (206), so players can seek in long files.
    return web.FileResponse(path, headers=headers)


def _attachment(name: str, inline: bool = False) -> str:
    from urllib.parse import quote

    kind = "inline" if inline else "attachment"
    return f"{kind}; filename*=UTF-8''{quote(name)}"
