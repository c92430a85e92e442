"""Handlers for finished work: transcript downloads, RTTM, and the original audio."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .api import get_task_or_404
from .errors import ApiError
from .keys import TASKS
from .models import Stage, Task, pipeline_stages
from .pipeline.formats import FORMATS, render, to_rttm
from .worker import stage_output


def final_output(request: web.Request, task: Task) -> dict[str, Any]:
    """The output of the task's last stage: the finished transcript (NOT_READY before)."""
    if task.stage != Stage.COMPLETE:
        raise ApiError(
            "NOT_READY",
            f"The task is {task.stage.value}; the transcript comes when it is complete.",
            f"stage={task.stage.value}",
        )
    last = pipeline_stages(task.options)[-1].value
    path = stage_output(request.app[TASKS].work_dir(task.id), last)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


async def transcript(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError("BAD_REQUEST", f"Unknown format {fmt!r}.", f"formats: {', '.join(FORMATS)}")
    task = await get_task_or_404(request)
    body = render(fmt, final_output(request, task), task.timings)
    stem = task.filename.rsplit(".", 1)[0] or "transcript"
    response = web.Response(text=body, content_type=FORMATS[fmt], charset="utf-8")
    if "download" in request.query:
        response.headers["Content-Disposition"] = _attachment(f"{stem}.{fmt}")
    return response


async def rttm(request: web.Request) -> web.Response:
    task = await get_task_or_404(request)
    data = final_output(request, task)
    if "turns" not in data:
        raise ApiError("NOT_READY", "This task ran without diarization.", "diarize=false")
    return web.Response(
        text=to_rttm(data["turns"], task.id), content_type="text/plain", charset="utf-8"
    )


async def audio(request: web.Request) -> web.StreamResponse:
    task = await get_task_or_404(request)
    path = request.app[TASKS].audio_path(task)
    if task.stage == Stage.UPLOADING or not path.exists():
        raise ApiError("NOT_READY", "The audio has not arrived yet.")
    # FileResponse answers Range requests (206), so players can seek in long files.
    return web.FileResponse(
        path, headers={"Content-Disposition": _attachment(task.filename, inline=True)}
    )


def _attachment(name: str, inline: bool = False) -> str:
    from urllib.parse import quote

    kind = "inline" if inline else "attachment"
    return f"{kind}; filename*=UTF-8''{quote(name)}"
