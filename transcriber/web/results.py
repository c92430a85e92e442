"""Handlers for finished work: transcript downloads, RTTM, and the original audio."""

from __future__ import annotations

from aiohttp import web

from transcriber.jobs.results import final_output
from transcriber.protocol.errors import ApiError
from transcriber.protocol.stages import Stage
from transcriber.web.keys import TASKS
from transcriber.worker.pipeline.formats import FORMATS, render, to_rttm


async def transcript(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError("BAD_REQUEST", f"Unknown format {fmt!r}.", f"formats: {', '.join(FORMATS)}")
    task = await request.app[TASKS].require(request.match_info["task_id"])
    body = render(fmt, final_output(request.app[TASKS], task), task.timings)
    stem = task.filename.rsplit(".", 1)[0] or "transcript"
    response = web.Response(text=body, content_type=FORMATS[fmt], charset="utf-8")
    if "download" in request.query:
        response.headers["Content-Disposition"] = _attachment(f"{stem}.{fmt}")
    return response


async def rttm(request: web.Request) -> web.Response:
    task = await request.app[TASKS].require(request.match_info["task_id"])
    data = final_output(request.app[TASKS], task)
    if "turns" not in data:
        raise ApiError("NOT_READY", "This task ran without diarization.", "diarize=false")
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
