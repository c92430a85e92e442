"""Handlers for work on a transcript after the run: names, corrections, re-diarization, search.

Each edit answers with the new revision (json, names applied) and its ETag; a client sends
that ETag back in If-Match with its next edit, and gets 412 when another tab was faster. With
`Prefer: return=minimal` (RFC 7240) the answer is only what changed: the revision number, the
names, and the segment edited (none for a rename). The whole revision of a 3-hour transcript
takes about a second to build and serialize; this is a kilobyte or two whatever the length.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from aiohttp import web

from transcriber.formats.text import to_json
from transcriber.jobs.intake.admission import check_queue
from transcriber.jobs.transcripts.edits import edit_segment, named, named_segment, rename
from transcriber.jobs.transcripts.rediarize import rediarize as start_rediarize
from transcriber.jobs.transcripts.revisions import etag
from transcriber.jobs.transcripts.search import search as run_search
from transcriber.protocol.errors import ApiError
from transcriber.store.task import task_json
from transcriber.store.transcripts import Revision
from transcriber.web.auth import person
from transcriber.web.keys import CONFIG, RUNNER, TRANSCRIPTS
from transcriber.web.params import SearchQuery
from transcriber.web.parsing import json_body, query


def _revision_json(revision: Revision) -> str:
    data = {"speaker_names": {}, "speaker_profiles": {}} | named(revision.data)
    data |= {"revision": revision.revision, "source": revision.source}
    return to_json(data, {})


def _change_json(revision: Revision, index: int | None) -> dict[str, Any]:
    """What an edit changed (protocol RevisionChange): the names, and segment `index`."""
    names = revision.data.get("speaker_names") or {}
    segments = []
    if index is not None:
        segment = named_segment(revision.data["segments"][index], names)
        segments.append({"index": index} | {k: v for k, v in segment.items() if k != "index"})
    return {
        "revision": revision.revision,
        "source": revision.source,
        "speaker_names": dict(names),
        "segments": segments,
    }


def prefers_minimal(request: web.Request) -> bool:
    """Prefer: return=minimal (RFC 7240): the first `return` preference decides; a client
    that sends none, or another value, gets the whole revision."""
    for header in request.headers.getall("Prefer", ()):
        for preference in header.split(","):
            name, _, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() == "return":
                return value.strip().strip('"').lower() == "minimal"
    return False


async def _edit_response(
    request: web.Request, revision: Revision, index: int | None = None
) -> web.Response:
    if prefers_minimal(request):
        response = web.json_response(_change_json(revision, index))
        response.headers["Preference-Applied"] = "return=minimal"
    else:
        # In a thread: the names are applied to a copy of the whole transcript, which takes
        # a while for a long one, and the event loop serves everyone meanwhile.
        response = web.json_response(text=await asyncio.to_thread(_revision_json, revision))
    response.headers["ETag"] = etag(revision)
    response.headers["Vary"] = "Prefer"
    return response


async def speakers(request: web.Request) -> web.Response:
    body = await json_body(request)
    revision = await request.app[TRANSCRIPTS].change(
        request.match_info["task_id"],
        request.headers.get("If-Match"),
        partial(rename, body=body),
    )
    return await _edit_response(request, revision)


async def segment(request: web.Request) -> web.Response:
    raw = request.match_info["index"]
    if not raw.isdigit():
        raise ApiError("BAD_REQUEST", "The segment index must be a whole number.", f"{raw!r}")
    body = await json_body(request)
    revision = await request.app[TRANSCRIPTS].change(
        request.match_info["task_id"],
        request.headers.get("If-Match"),
        partial(edit_segment, index=int(raw), body=body),
    )
    return await _edit_response(request, revision, int(raw))


async def rediarize(request: web.Request) -> web.Response:
    body = await json_body(request) if request.can_read_body else {}
    config = request.app[CONFIG]
    check_queue(config, request.app[RUNNER].queue_length)
    task = await start_rediarize(
        request.app[TRANSCRIPTS],
        request.app[RUNNER].enqueue,
        request.match_info["task_id"],
        body,
        config.client_models,
    )
    return web.json_response(task_json(task), status=202)


async def search(request: web.Request) -> web.Response:
    asked = query(request, SearchQuery)
    limit = max(1, asked.limit)
    owner = person(request).sees(request.app[CONFIG].visibility)
    page = await run_search(request.app[TRANSCRIPTS], asked.q, limit, asked.offset, owner)
    return web.json_response(page.model_dump())
