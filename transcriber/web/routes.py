"""Every route, in one explicit list, each with a name."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from transcriber.web import api, edits, nodes, openai_api, openapi, profiles, results, session, ws

STATIC = Path(__file__).resolve().parents[2] / "static"
NODE_STAGE = "/internal/nodes/tasks/{task_id}/stages/{stage}"


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get("/", index, name="index"),
            web.get("/api/health", api.health, name="health"),
            web.get("/api/openapi.json", openapi.document, name="openapi"),
            web.get("/api/session", session.session_state, name="session"),
            web.post("/api/session", session.sign_in, name="sign_in"),
            web.delete("/api/session", session.sign_out, name="sign_out"),
            web.get("/api/ws", ws.websocket, name="ws"),
            web.get("/api/tasks", api.list_tasks, name="tasks"),
            web.post("/api/tasks", api.create_task, name="create_task"),
            web.get("/api/tasks/{task_id}", api.get_task, name="task"),
            web.delete("/api/tasks/{task_id}", api.delete_task, name="delete_task"),
            # Right after the task: aiohttp tries the routes under /api/tasks in this order, and
            # these two are the ones followed while a task runs.
            web.get("/api/tasks/{task_id}/segments", results.segments, name="segments"),
            web.put("/api/tasks/{task_id}/audio", api.upload_audio, name="upload_audio"),
            web.get("/api/tasks/{task_id}/audio", results.audio, name="audio"),
            web.post("/api/tasks/{task_id}/cancel", api.cancel_task, name="cancel_task"),
            web.post("/api/tasks/{task_id}/retry", api.retry_task, name="retry_task"),
            web.get("/api/tasks/{task_id}/transcript", results.transcript, name="transcript"),
            web.get("/api/tasks/{task_id}/diarization.rttm", results.rttm, name="rttm"),
            web.patch("/api/tasks/{task_id}/speakers", edits.speakers, name="speakers"),
            web.patch("/api/tasks/{task_id}/segments/{index}", edits.segment, name="segment"),
            web.post("/api/tasks/{task_id}/rediarize", edits.rediarize, name="rediarize"),
            web.delete(
                "/api/tasks/{task_id}/speakers/{speaker}/profile", profiles.unmatch, name="unmatch"
            ),
            web.get("/api/profiles", profiles.list_profiles, name="profiles"),
            web.post("/api/profiles", profiles.create_profile, name="create_profile"),
            web.get("/api/profiles/export", profiles.export_profiles, name="export_profiles"),
            web.post("/api/profiles/import", profiles.import_file, name="import_profiles"),
            web.patch("/api/profiles/{profile_id}", profiles.rename_profile, name="rename_profile"),
            web.delete(
                "/api/profiles/{profile_id}", profiles.delete_profile, name="delete_profile"
            ),
            web.post("/api/profiles/{profile_id}/samples", profiles.add_sample, name="add_sample"),
            web.get("/api/search", edits.search, name="search"),
            web.post("/v1/audio/transcriptions", openai_api.transcriptions, name="openai"),
            web.get("/v1/models", openai_api.models, name="openai_models"),
            web.get("/internal/nodes/tasks/{task_id}/audio", nodes.audio, name="node_audio"),
            web.get(NODE_STAGE, nodes.stage_output, name="node_stage"),
            web.put(NODE_STAGE, nodes.save_stage_output, name="node_save_stage"),
            web.static("/static", STATIC, name="static"),
        ]
    )
