"""Internal routes for nodes that do not share the data folder (`transcriber node --audio
http`): a task's audio (with Range), and its stage outputs both ways. Each takes the cluster's
node token as a bearer token, never the API token; they are not under /api/."""

from __future__ import annotations

from aiohttp import web

from transcriber.jobs.engines import node_files
from transcriber.protocol.errors import ApiError
from transcriber.protocol.server import StageSaved
from transcriber.web.keys import CONFIG, TASKS
from transcriber.web.params import AttemptQuery
from transcriber.web.parsing import bearer, query, same_secret
from transcriber.worker.job import write_atomic


def _check_node(request: web.Request) -> None:
    expected = request.app[CONFIG].node_token
    given = bearer(request) or ""
    if not expected or not same_secret(given, expected):
        raise ApiError("UNAUTHORIZED", detail="send 'Authorization: Bearer <node token>'")


async def audio(request: web.Request) -> web.FileResponse:
    _check_node(request)
    path = await node_files.audio_file(request.app[TASKS], request.match_info["task_id"])
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


async def stage_output(request: web.Request) -> web.FileResponse:
    _check_node(request)
    tasks, info = request.app[TASKS], request.match_info
    path = await node_files.stage_file(tasks, info["task_id"], info["stage"])
    return web.FileResponse(path, headers={"Content-Type": "application/json"})


async def save_stage_output(request: web.Request) -> web.Response:
    _check_node(request)
    attempt = query(request, AttemptQuery).attempt
    tasks, info = request.app[TASKS], request.match_info
    path = await node_files.check_writer(tasks, info["task_id"], info["stage"], attempt)
    body = bytearray()
    async for chunk in request.content.iter_chunked(1024 * 1024):
        body += chunk
        if len(body) > node_files.MAX_STAGE_BYTES:
            raise ApiError("FILE_TOO_LARGE")
    write_atomic(path, bytes(body))
    return web.json_response(StageSaved(saved=info["stage"], bytes=len(body)).model_dump())
