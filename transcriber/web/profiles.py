"""Handlers for known voices: voice profiles, their samples, export and import, and undoing a
match on one task. The logic is jobs/profiles'; this reads requests and shapes answers."""

from __future__ import annotations

from aiohttp import web

from transcriber.jobs.profiles.transfer import export, import_profiles
from transcriber.protocol.profiles import ProfileInfo, ProfileList, SampleInfo
from transcriber.store.profiles import Profile
from transcriber.web.auth import check_visible
from transcriber.web.keys import PROFILES
from transcriber.web.params import NewProfile, NewSample, ProfileName
from transcriber.web.parsing import json_body, large_json_body, model_body

# An export of a thousand profiles of three samples is about 7 MB.
IMPORT_LIMIT = 64 * 1024 * 1024


def profile_json(profile: Profile) -> dict[str, object]:
    info = ProfileInfo(
        id=profile.id,
        name=profile.name,
        seconds=round(profile.seconds, 3),
        samples=[
            SampleInfo(
                task_id=s.task_id, speaker=s.speaker, seconds=s.seconds, created_at=s.created_at
            )
            for s in profile.samples
        ],
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )
    return info.model_dump()


async def list_profiles(request: web.Request) -> web.Response:
    found = await request.app[PROFILES].store.profiles()
    return web.json_response(_listing(request, found))


async def create_profile(request: web.Request) -> web.Response:
    body = model_body(await json_body(request), NewProfile)
    await check_visible(request, body.task_id)
    profile = await request.app[PROFILES].create(body.task_id, body.speaker, body.name)
    response = web.json_response(profile_json(profile), status=201)
    response.headers["Location"] = f"/api/profiles/{profile.id}"
    return response


async def add_sample(request: web.Request) -> web.Response:
    body = model_body(await json_body(request), NewSample)
    profile_id = request.match_info["profile_id"]
    await check_visible(request, body.task_id)
    profile = await request.app[PROFILES].add_sample(profile_id, body.task_id, body.speaker)
    return web.json_response(profile_json(profile))


async def rename_profile(request: web.Request) -> web.Response:
    body = model_body(await json_body(request), ProfileName)
    profile = await request.app[PROFILES].rename(request.match_info["profile_id"], body.name)
    return web.json_response(profile_json(profile))


async def delete_profile(request: web.Request) -> web.Response:
    await request.app[PROFILES].delete(request.match_info["profile_id"])
    return web.Response(status=204)


async def export_profiles(request: web.Request) -> web.Response:
    document = await export(request.app[PROFILES])
    response = web.json_response(document.model_dump())
    response.headers["Content-Disposition"] = 'attachment; filename="voice-profiles.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


async def import_file(request: web.Request) -> web.Response:
    body = await large_json_body(request, IMPORT_LIMIT)
    made = await import_profiles(request.app[PROFILES], body)
    return web.json_response(_listing(request, made), status=201)


def _listing(request: web.Request, profiles: list[Profile]) -> dict[str, object]:
    enabled = request.app[PROFILES].enabled
    listing = {"profiles": [profile_json(p) for p in profiles], "enabled": enabled}
    return ProfileList.model_validate(listing).model_dump()


async def unmatch(request: web.Request) -> web.Response:
    """DELETE /api/tasks/{id}/speakers/{speaker}/profile: "this is not that person"."""
    task_id, speaker = request.match_info["task_id"], request.match_info["speaker"]
    data = await request.app[PROFILES].unmatch(task_id, speaker)
    return web.json_response(
        {
            "speaker": speaker,
            "speaker_names": data.get("speaker_names") or {},
            "speaker_profiles": data.get("speaker_profiles") or {},
        }
    )
